"""Webhooks read straight from the WSGI environ, and flow routes answered without Flask.

Both ways into a flow route live here and share the reading: the Flask view
(:func:`flask_view`) and :class:`DirectRoutes`, a WSGI layer in front of a Flask app that
answers a request for a flow route itself. Flask's dispatch (URL matching, the request
context, the response object) costs more than everything answerkit does for a webhook, and
a flow handler needs none of it: the typed ``call`` carries the request. Anything Flask must
see, because the app has request hooks, or the request is not a plain GET or form POST,
goes to Flask.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from flask import Flask, Request, current_app, request
from flask import Response as FlaskResponse
from flask.sessions import SecureCookieSessionInterface
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from answerkit._deadline import loggable
from answerkit._dispatch_server import saw_server
from answerkit._dispatch_webhook import XML_CONTENT_TYPE, UnreadableBody
from answerkit._log import QuietLog
from answerkit._params import ParamsLike, parse_form
from answerkit.dispatch import (
    Dispatcher,
    Route,
    WebhookReply,
    WebhookRequest,
)

if TYPE_CHECKING:
    from flask import Flask

log = QuietLog("answerkit")

WSGIEnviron = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FAST_FORM = 64 * 1024
"""Bodies up to this size in Vobiz's form encoding are parsed directly; anything else
(larger, multipart, no length) goes through Werkzeug's form parser and its limits."""


WEBHOOK_BODY_LIMIT = 1024 * 1024
"""The most a webhook body may hold when the app sets no ``MAX_CONTENT_LENGTH`` (Flask's
default is none): Vobiz posts forms of a few KB, and a body of any size, read whole into
memory, would let one signed request exhaust a worker's memory."""


def form_length(environ: WSGIEnviron, max_content_length: int | None) -> int | None:
    """The length of a POST body we read ourselves: a form (or no content type: Vobiz
    always posts a form) of known length within both limits. None: leave it to Werkzeug."""
    text: str = environ.get("CONTENT_LENGTH") or ""
    # Past 18 digits int() could refuse it (CPython's limit on long digit strings), and no
    # such body is small anyway.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    length = int(text)
    if (
        length <= MAX_FAST_FORM
        and (max_content_length is None or length <= max_content_length)
        and "HTTP_TRANSFER_ENCODING" not in environ
        and is_form_type(environ)
    ):
        return length
    return None


def _more_behind(req: Request) -> bool:
    """Whether a body of no stated length goes on past the MAX_CONTENT_LENGTH bytes
    Werkzeug read of it: Werkzeug stops there without a word, and its fields would be read
    cut short (Digits=1234 as 12). Asked only of a body the server ends itself (chunked,
    ``wsgi.input_terminated``): one byte more of any other would wait on the client, and
    take a byte of its next request."""
    if req.content_length is not None or not req.environ.get("wsgi.input_terminated"):
        return False  # a stated length over the limit is refused before any read
    try:
        return bool(req.environ["wsgi.input"].read(1))
    except RequestEntityTooLarge:  # held to the limit before the hooks (held_to_limit)
        return True
    except Exception as exc:  # a broken chunk past the limit: the body is not whole
        raise UnreadableBody(f"its body could not be read: {type(exc).__name__}: {exc}") from exc


def over_default_limit(size: str) -> str:
    """Why a ``size`` body is refused under :data:`WEBHOOK_BODY_LIMIT`, and the fix."""
    return (
        f"its {size} body is over answerkit's limit for a webhook body ({WEBHOOK_BODY_LIMIT} "
        "bytes, when the app sets no MAX_CONTENT_LENGTH): Vobiz posts forms of a few KB; set "
        "MAX_CONTENT_LENGTH to allow more"
    )


class BodyHold:
    """A flow blueprint's URL value preprocessor: set :data:`WEBHOOK_BODY_LIMIT` on a
    request to one of the flow's webhook routes (the app sets no MAX_CONTENT_LENGTH)
    before the app's ``before_request`` hooks run. A hook that read the body
    (``request.get_data()``, ``request.form``) read any size whole, signed or not, before
    the view set its limit; now Werkzeug holds it there, and a hook may raise the limit for
    itself. Told by endpoint name, not by view: a view the app swapped in (a wrapper) is
    held too. The flow's other endpoints (a TransferTrigger's, a health check's, one of
    the user's) are no webhooks: left to the app."""

    __slots__ = ("routes",)

    def __init__(self, routes: frozenset[str]) -> None:
        self.routes = routes  # the names of the flow's webhook routes

    def __call__(self, endpoint: str | None, values: dict[str, Any] | None) -> None:
        if endpoint is None or endpoint.rpartition(".")[2] not in self.routes:
            return
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        if req.max_content_length is None:
            req.max_content_length = WEBHOOK_BODY_LIMIT


def _past_limit(req: Request, data: bytes) -> bool:
    """Whether the body is longer than the request's limit: ``data`` is the most Werkzeug
    read of it (a hook's get_data() stops there without a word), so one that fills the
    limit is over it if a byte more is behind."""
    limit = req.max_content_length
    return limit is not None and (len(data) > limit or (len(data) == limit and _more_behind(req)))


def _over_limit(req: Request) -> str:
    """Which of the app's limits a body is over, and the fix (Werkzeug says neither)."""
    limit = req.max_content_length
    length = req.content_length
    if limit is not None and (length is None or length > limit):
        size = f"{length}-byte" if length else "chunked"
        configured = current_app.config.get("MAX_CONTENT_LENGTH")
        if configured is None and limit == WEBHOOK_BODY_LIMIT:
            return over_default_limit(size)
        whose = "MAX_CONTENT_LENGTH" if configured == limit else "request.max_content_length"
        return (
            f"its {size} body is over the app's {whose} ({limit} bytes): Vobiz posts forms "
            "of a few KB (more with long SIP headers or speech results); raise it (with "
            "MAX_CONTENT_LENGTH unset, a webhook body may hold 1 MiB)"
        )
    return (
        f"its multipart body is over the app's MAX_FORM_MEMORY_SIZE ({req.max_form_memory_size}"
        f" bytes a field) or MAX_FORM_PARTS ({req.max_form_parts} fields): Vobiz posts "
        f"{FORM_TYPE}, which neither limits; send that (a test client: data=dict, not files)"
    )


def is_form_type(environ: WSGIEnviron) -> bool:
    """Whether the body is declared a form in Vobiz's encoding (or not declared at all:
    Vobiz always posts a form)."""
    return environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() in (FORM_TYPE, "")


def _hooked_form(req: Request) -> ParamsLike:
    """The form a request hook had Werkzeug parse; told of when it came back empty from a
    body that had bytes (Werkzeug drops every field of a body that is not UTF-8)."""
    form = req.form
    limit = req.max_content_length
    if limit is not None and req.content_length is not None and req.content_length > limit:
        # Parsed whole by a hook before the limit was set (direct=False, say).
        raise UnreadableBody(_over_limit(req), 413)
    read_to_limit = getattr(req.stream, "is_exhausted", False)  # Werkzeug's LimitedStream
    if limit is not None and read_to_limit and _more_behind(req):
        raise UnreadableBody(_over_limit(req), 413)  # Werkzeug parsed a form cut short
    if not form and req.content_length:
        log.warning(
            "webhook %s: a request hook read request.form (or request.values) first, and "
            "Werkzeug found no field in its %d-byte body (it drops every field of a body that "
            "is not UTF-8); read request.get_data() in the hook instead, and answerkit reads "
            "the fields from those bytes",
            loggable(req.path),
            req.content_length,
        )
    return form


def read_form(environ: WSGIEnviron, length: int) -> ParamsLike:
    """Read and parse a form body of ``length`` bytes, leaving it readable for anyone after
    us (an ``after_request`` hook reading ``request.form``)."""
    try:
        body = environ["wsgi.input"].read(length)
    except Exception as exc:  # the server's own (a client gone, a broken chunk)
        raise UnreadableBody(f"its body could not be read: {type(exc).__name__}: {exc}") from exc
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) < length:
        # Cut short by the client, or read before us without Werkzeug (a hook reading
        # request.stream): refused, never run on part of its fields.
        raise UnreadableBody(
            f"its body was {len(body)} bytes of the {length} its Content-Length announced "
            "(cut short); if a request hook reads request.stream, read request.get_data() "
            "instead (answerkit finds the body there)"
        )
    return parse_form(body)


def query_of(environ: WSGIEnviron) -> Mapping[str, str]:
    """Our own query parameters (the first value of each name), as Werkzeug reads them."""
    text: str = environ.get("QUERY_STRING") or ""
    if not text:
        return {}
    return parse_form(text.encode("latin-1", "replace"))


def signed_path(environ: WSGIEnviron, path: str, root: str) -> str:
    """The request path as Vobiz sent it: signatures cover the percent-encoded form, while
    ``path`` is decoded. Servers that keep the raw URI (gunicorn's RAW_URI, Werkzeug's
    REQUEST_URI) let us use it exactly."""
    raw: str | None = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return path
    raw_path = raw.partition("?")[0]
    if root and raw_path.startswith(root):
        raw_path = raw_path[len(root) :]
    if raw_path == path:
        return path
    return raw_path if unquote(raw_path) == path else path


def wsgi_text(s: str) -> str:
    """A path as WSGI servers put it in the environ: its UTF-8 bytes read as latin-1."""
    return s.encode().decode("latin-1")


def from_wsgi_text(s: str) -> str:
    """The text a WSGI environ string stands for (the inverse of :func:`wsgi_text`)."""
    return s.encode("latin-1").decode("utf-8", "replace") if not s.isascii() else s


_STATUS_LINES = {s.value: f"{s.value} {s.phrase.upper()}" for s in HTTPStatus}


class DirectRoutes:
    """WSGI middleware that answers flow routes itself and hands the rest to the app.

    Installed by :meth:`CallFlow.register` over a Flask app's ``wsgi_app``. A request is
    answered here when its path is a flow route, it is a GET or a form POST of known length,
    and the app has no request hooks (``before_request``, ``after_request``,
    ``teardown_request``, URL value preprocessors), which Flask alone runs. The handler runs
    inside the app context (``current_app``, ``g`` and extensions work) but not a request
    context: ``flask.request`` is Flask's, and a handler reads ``call`` instead. Everything
    else, and every request when ``enabled`` is False, is the app's.
    """

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.enabled = True
        # WSGI PATH_INFO -> (dispatcher, route, decoded path, Flask endpoint, its view)
        self._routes: dict[str, tuple[Dispatcher, Route, str, str, object]] = {}

    def add(self, path: str, dispatcher: Dispatcher, route: Route, endpoint: str) -> bool:
        """Answer requests for ``path`` (the full path below the app root) here, as long as
        Flask would send them to ``endpoint`` and its view is still the one it has now.

        False, and nothing added, when Flask's URL map sends a GET or POST for ``path``
        elsewhere (a rule registered earlier wins there: another flow's, the app's own) or
        the path is taken here already.
        """
        key = wsgi_text(path)
        view = self.app.view_functions.get(endpoint)
        if key in self._routes or view is None or not _routed_to(self.app, path, endpoint):
            return False
        self._routes[key] = (dispatcher, route, path, endpoint, view)
        return True

    def _hooked(self) -> bool:
        """Whether Flask has something to do for this request that the direct path would
        skip: request hooks, a request class of its own (its limits), trusted hosts, a
        session interface of its own (it may set cookies)."""
        app = self.app
        return bool(
            any(app.before_request_funcs.values())
            or any(app.after_request_funcs.values())
            or any(app.teardown_request_funcs.values())
            # The flows' own (BodyHold) have nothing to do on the direct path,
            # which reads a small form only.
            or any(
                fs and (len(fs) > 1 or type(fs[0]) is not BodyHold)
                for fs in app.url_value_preprocessors.values()
            )
            or app.request_class is not Request
            or app.config.get("TRUSTED_HOSTS")
            or type(app.session_interface) is not SecureCookieSessionInterface
        )

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        entry = self._routes.get(environ.get("PATH_INFO", ""))
        if entry is None or not self.enabled:
            return self.inner(environ, start_response)
        if self._hooked() or self.app.view_functions.get(entry[3]) is not entry[4]:
            # Request hooks to run, or the app swapped the route's view: Flask's to serve.
            return self.inner(environ, start_response)
        dispatcher, route, path, _endpoint, _view = entry
        if not dispatcher.server_seen:
            saw_server(dispatcher, environ)
        method = environ.get("REQUEST_METHOD", "GET")
        query = query_of(environ)
        read_params: Callable[[], ParamsLike]
        if method == "POST":
            length = form_length(environ, self.app.config.get("MAX_CONTENT_LENGTH"))
            if length is None:
                return self.inner(environ, start_response)
            read_params = lambda: read_form(environ, length)  # noqa: E731
        elif method == "GET":
            read_params = lambda: query  # noqa: E731
        else:  # HEAD, OPTIONS, 405s: Flask's
            return self.inner(environ, start_response)
        root = from_wsgi_text(environ.get("SCRIPT_NAME", "")).rstrip("/")
        request = WebhookRequest(
            method=method,
            path=signed_path(environ, path, root),
            read_params=read_params,
            query=query,
            headers=EnvironHeaders(environ),
            scheme=environ.get("wsgi.url_scheme", "http"),
            script_root=root,
        )
        ctx = self.app.app_context()
        ctx.push()
        try:
            reply = dispatcher.handle(route, request)
        finally:
            ctx.pop()
        return _answer(reply, start_response)


def _routed_to(app: Flask, path: str, endpoint: str) -> bool:
    """Whether Flask's URL map sends both a GET and a POST for ``path`` to ``endpoint``."""
    adapter = app.url_map.bind("localhost")
    for method in ("GET", "POST"):
        try:
            found, _args = adapter.match(path, method=method)
        except HTTPException:  # not found, method not allowed, a redirect
            return False
        if found != endpoint:
            return False
    return True


def _answer(reply: WebhookReply, start_response: StartResponse) -> Iterable[bytes]:
    body = reply.body
    headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(body)))]
    if reply.headers:
        headers += reply.headers.items()
    start_response(_STATUS_LINES.get(reply.status) or f"{reply.status} UNKNOWN", headers)
    return [body]


def flask_view(dispatcher: Dispatcher, route: Route) -> Callable[[], FlaskResponse]:
    """The Flask view of a flow route: the way in for an app that Flask serves whole."""
    # Werkzeug computes request.host on every access; only a flow without a public URL
    # checks signatures against it.
    needs_host = dispatcher.verifier is not None and dispatcher.verifier.needs_host

    def view() -> FlaskResponse:
        # One look-up of the request behind Flask's context-local proxy, not one per field.
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        environ = req.environ
        method = req.method
        if method == "HEAD":
            # Flask routes HEAD to every GET view. Vobiz never sends one; uptime monitors
            # and link checkers do, and a probe must not run the call flow (a transfer, a
            # state write) or spend a replay record: the route answers that it exists.
            return FlaskResponse(b"", content_type=XML_CONTENT_TYPE)
        if not dispatcher.server_seen:
            saw_server(dispatcher, environ)
        if req.max_content_length is None:
            req.max_content_length = WEBHOOK_BODY_LIMIT  # read whole into memory below
        # Vobiz sends its fields in the form (POST) or in the query string (GET);
        # our own query parameters ride in the query string either way.
        query = query_of(environ)

        def read_params() -> ParamsLike:
            if method != "POST":
                return query
            try:
                return read_body()
            except UnreadableBody:
                raise
            except RequestEntityTooLarge as exc:
                # Werkzeug's 413 says nothing of whose limit it is: the app's.
                raise UnreadableBody(_over_limit(req), 413) from exc
            except Exception as exc:  # the server's (a client gone, a broken chunk)
                raise UnreadableBody(
                    f"its body could not be read: {type(exc).__name__}: {exc}"
                ) from exc

        def read_body() -> ParamsLike:
            length = form_length(environ, req.max_content_length)
            cached: bytes | None = getattr(req, "_cached_data", None)
            if cached is not None and length is not None and len(cached) == length:
                # A request hook read the body with get_data() (before request.form, or
                # without it): its bytes, read as the direct path reads them (Werkzeug
                # drops every field of a body that is not UTF-8, and reads "%E9" otherwise).
                return parse_form(cached)
            if "form" in req.__dict__:
                # A request hook read the body through request.form (a get_data() after
                # that caches b""): the stream is spent, and Werkzeug's parse has it.
                return _hooked_form(req)
            if length is not None and cached is None:
                return read_form(environ, length)
            if is_form_type(environ):
                # A form of no stated length (chunked) or over MAX_FAST_FORM, or one a hook
                # read with get_data(): its bytes, within the app's MAX_CONTENT_LENGTH
                # (Werkzeug's only limit on such a form), read as the direct path reads
                # them; Werkzeug's own parse drops every field of a body that is not UTF-8.
                if cached is None and getattr(req.__dict__.get("stream"), "_pos", 0) > 0:
                    # A hook read part of request.stream of a body of no stated length
                    # (Werkzeug's LimitedStream counts it): never run on what is left.
                    raise UnreadableBody(
                        "a request hook read part of its body from request.stream (cut "
                        "short); read request.get_data() instead (answerkit finds the body "
                        "there)"
                    )
                data = req.get_data() if cached is None else cached
                if _past_limit(req, data):
                    raise UnreadableBody(_over_limit(req), 413)
                stated = req.content_length
                if stated is not None and len(data) < stated:
                    # A hook read part of request.stream first: never run on what is left.
                    raise UnreadableBody(
                        f"its body was {len(data)} bytes of the {stated} its Content-Length "
                        "announced (cut short); if a request hook reads request.stream, "
                        "read request.get_data() instead (answerkit finds the body there)"
                    )
                return parse_form(data)
            if cached is not None:
                if _past_limit(req, cached):  # a multipart body a hook read to the limit
                    raise UnreadableBody(_over_limit(req), 413)
                return _hooked_form(req)
            return req.form  # multipart: Werkzeug's parser and limits; repeated fields kept

        root = req.root_path
        # Not req.path: Werkzeug strips extra leading slashes from it (and routes "//answer"
        # here), but Vobiz signed the URL it called, "//answer" and all (spec §3.3).
        path = from_wsgi_text(environ.get("PATH_INFO") or "")
        if not path.startswith("/"):
            path = req.path
        reply = dispatcher.handle(
            route,
            WebhookRequest(
                method=method,
                path=signed_path(environ, path, root),
                read_params=read_params,
                query=query,
                headers=req.headers,
                scheme=req.scheme,
                host=req.host if needs_host else "",
                script_root=root,
            ),
        )
        return FlaskResponse(reply.body, status=reply.status, content_type=reply.content_type)

    view.__name__ = f"answerkit_{route.name}"
    return view


#: Flask's request handling steps; a subclass overriding any of them (to add a header to
#: every response, say) would be skipped by the direct path.
_FLASK_REQUEST_STEPS = (
    "wsgi_app", "full_dispatch_request", "dispatch_request", "preprocess_request",
    "process_response", "finalize_request", "make_response", "do_teardown_request",
    "handle_user_exception", "handle_exception", "request_context", "app_context",
)  # fmt: skip


def install_direct_routes(app: Flask) -> DirectRoutes | None:
    """The app's DirectRoutes layer, installed on first use. None when the app's
    ``wsgi_app`` is already wrapped by other middleware: answering before it would skip it."""
    layer = app.extensions.get("answerkit.direct")
    if isinstance(layer, DirectRoutes):
        return layer
    if getattr(app.wsgi_app, "__func__", None) is not Flask.wsgi_app:
        return None
    steps = _FLASK_REQUEST_STEPS
    if any(getattr(type(app), n, None) is not getattr(Flask, n, None) for n in steps):
        return None  # a Flask subclass changes how requests are handled: all go to Flask
    layer = DirectRoutes(app, app.wsgi_app)
    app.wsgi_app = layer  # type: ignore[method-assign]
    app.extensions["answerkit.direct"] = layer
    return layer
