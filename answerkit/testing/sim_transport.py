"""How the simulator reaches the application: in-process WSGI, or real HTTP.

Both transports take the same request (method, target, form fields, headers) and give
back the same :class:`Reply`, so the engine cannot tell them apart. The
:class:`Router` decides, for every URL a document names, which public URL Vobiz
would have signed and where the request really goes; URLs outside the application
are never requested (tests stay on loopback).
"""

from __future__ import annotations

import ipaddress
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, unquote_to_bytes, urlencode, urlsplit

import requests

from answerkit.client import refuse_cookies
from answerkit.dispatch import STATUS_EVENTS, Route, dropped_callback_note
from answerkit.errors import ConfigurationError
from answerkit.signature import sign

if TYPE_CHECKING:
    from answerkit.app import CallFlow

__all__ = [
    "HTTPTransport",
    "HandlerErrorTap",
    "Reply",
    "Router",
    "Transport",
    "WSGITransport",
    "dropped_callback",
    "normal_url",
    "outside_hint",
    "sign_request",
    "signed_post",
    "unhandled_event",
]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status (0 when nothing answered), body, content type, error text."""

    status: int
    body: bytes
    content_type: str
    error: str | None = None


class Transport(Protocol):
    """Sends one webhook request."""

    def send(
        self, method: str, target: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Reply:
        """Send ``params`` as a form (POST) or query string (GET) to ``target``."""

    def close(self) -> None:
        """Release connections."""


def _under(url: str, root: str) -> bool:
    if not url.startswith(root):
        return False
    rest = url[len(root) :]
    return rest == "" or rest[0] in "/?"


_DEFAULT_PORTS = {"https": ":443", "http": ":80"}


def normal_url(url: str) -> str:
    """``url`` with its scheme and host in lower case and without the scheme's default
    port; the path, query and fragment stay exactly as written.

    One server's URL has several spellings (``https://Voice.Example.com:443/g`` is
    ``https://voice.example.com/g``): spec §3.3 says "normalise: lowercase scheme and
    host, drop the default port (:443/:80), keep the path exactly as received". A
    document that names the app in another spelling still reaches it.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, host = authority.rpartition("@")  # credentials keep their case
    scheme, host = scheme.lower(), host.lower()
    port = _DEFAULT_PORTS.get(scheme)
    if port is not None and host.endswith(port):
        host = host[: -len(port)]
    return f"{scheme}://{userinfo}{at}{host}{tail}"


class Router:
    """Maps the URLs a document names onto the application under test.

    ``public_root`` is where Vobiz would reach the app (what gets signed);
    ``local_root`` is where the simulator really sends requests (an ``http://``
    base URL), or None in-process, where the target is the path relative to the
    public root, as a proxy that strips the public path would pass it on.
    """

    def __init__(self, public_root: str, local_root: str | None = None) -> None:
        self.public_root = public_root.rstrip("/")
        self.local_root = local_root.rstrip("/") if local_root else None
        # The roots as URLs are matched (normal_url): each in the one spelling of its server.
        self._public_match = normal_url(self.public_root)
        self._local_match = normal_url(self.local_root) if self.local_root else None

    def resolve(self, url: str) -> tuple[str, str, str] | None:
        """``(signed URL, target, display path)`` for ``url``; None if outside the app.

        Scheme and host match in any case, and a default port (:443, :80) matches none
        (see normal_url); the path must match as written. The signed URL is the public root
        plus the path: what the app checks the signature against (spec §3.3).
        """
        if url.startswith("/"):
            url = self.public_root + url
        normal = normal_url(url)
        if _under(normal, self._public_match):
            rest = normal[len(self._public_match) :]
        elif self._local_match is not None and _under(normal, self._local_match):
            rest = normal[len(self._local_match) :]
        else:
            return None
        url = self.public_root + rest
        if not rest.startswith("/"):
            rest = "/" + rest
        return url, (self.local_root or "") + rest, rest

    def absolute(self, path: str) -> str:
        """The public URL of an application path."""
        return self.public_root + (path if path.startswith("/") else "/" + path)


class WSGITransport:
    """Calls a WSGI app (a Flask app) directly, with the environ a server would build.

    One request costs what the app costs: no socket, no test-client wrapping. The
    Host and scheme are the public URL's, so the app sees what it would see behind
    the proxy Vobiz reaches it through.
    """

    def __init__(self, app: WSGIApp, public_root: str) -> None:
        self.app = app
        parts = urlsplit(public_root)
        scheme = parts.scheme or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        self._base: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": parts.hostname or "localhost",
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": parts.netloc or "localhost",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_USER_AGENT": "Vobiz",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }

    def send(
        self, method: str, target: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Reply:
        """Run the app on one request built from ``target`` (a path with optional query)."""
        path, _, query = target.partition("?")
        encoded = urlencode(params)
        environ = dict(self._base)
        if method == "GET":
            query = f"{query}&{encoded}" if query and encoded else (query or encoded)
            body = b""
        else:
            body = encoded.encode("ascii")
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["REQUEST_METHOD"] = method
        # WSGI carries the decoded path as latin-1 text of its bytes (PEP 3333).
        environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
        environ["QUERY_STRING"] = query
        environ["REQUEST_URI"] = environ["RAW_URI"] = target
        environ["wsgi.input"] = BytesIO(body)
        for name, value in headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        captured: list[Any] = []

        def start_response(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured[:] = [status, response_headers]
            return lambda data: None

        result = self.app(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status_line, response_headers = captured
        content_type = ""
        for name, value in response_headers:
            if name.lower() == "content-type":
                content_type = value
                break
        return Reply(int(status_line.split(" ", 1)[0]), data, content_type)

    def close(self) -> None:
        """Nothing to release in-process."""


class HTTPTransport:
    """Sends requests over real HTTP (a running gunicorn or development server)."""

    def __init__(self, timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.timeout = timeout
        self._owns = session is None
        # Vobiz sends no cookies back (spec §1.0: the XML is stateless), nor does a session
        # made here; a session passed in is used as it is.
        self.session = session or refuse_cookies(requests.Session())

    def send(
        self, method: str, target: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Reply:
        """One HTTP request; a connection failure gives status 0 and the error text."""
        try:
            response = self.session.request(
                method,
                target,
                params=params if method == "GET" else None,
                data=params if method != "GET" else None,
                headers={"User-Agent": "Vobiz", **headers},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return Reply(0, b"", "", f"{type(exc).__name__}: {exc}")
        return Reply(
            response.status_code, response.content, response.headers.get("Content-Type", "")
        )

    def close(self) -> None:
        """Close the pooled connections (a session passed in is left open)."""
        if self._owns:
            self.session.close()


ErrorHook = Callable[[BaseException, Any, str], None]
_TAP_LOCK = threading.Lock()


@dataclass(eq=False)
class _Watch:
    """One watched webhook: where its errors go, its call, the thread that sent it."""

    into: list[str]
    call_uuid: str | None
    thread: int


class _TapHook:
    """What sits on a dispatcher's ``on_error`` while simulators watch its webhooks.

    Several simulators (in several threads) may share one flow, so an error is filed by
    the call it belongs to, never to whichever watcher came last; then it goes on to the
    hook found there (the flow's own), so a hook that raises (the dispatcher logs and
    swallows that) cannot hide it. With no watchers it only forwards.
    """

    def __init__(self, original: ErrorHook | None) -> None:
        self.original = original
        self.watches: list[_Watch] = []  # guarded by _TAP_LOCK; innermost last

    def find(self, call: Any) -> list[str] | None:
        """Where an error of ``call`` goes (call with _TAP_LOCK held)."""
        call_uuid = getattr(call, "call_uuid", None) or None
        newest_first = self.watches[::-1]
        if call_uuid is not None:
            for watch in newest_first:
                if watch.call_uuid == call_uuid:
                    return watch.into
        # No request parsed yet (call is None), or a watcher that named no call: the
        # in-process transport runs the app in the thread that sent the webhook.
        thread = threading.get_ident()
        for watch in newest_first:
            if watch.thread == thread and (call_uuid is None or watch.call_uuid is None):
                return watch.into
        # Served in another thread (a live server) for the only watcher, which named no
        # call: unambiguous. Anything else is not a simulated webhook's error.
        if len(self.watches) == 1 and self.watches[0].call_uuid is None:
            return self.watches[0].into
        return None

    def __call__(self, exc: BaseException, call: Any, route: str) -> None:
        with _TAP_LOCK:
            into = self.find(call)
            original = self.original
            if into is not None:  # recorded first: the flow's hook may raise
                into.append(f"{route}: {type(exc).__name__}: {exc}")
        if original is not None:
            original(exc, call, route)


class HandlerErrorTap:
    """Sees the errors a flow's handlers raise while one webhook of a call is in flight.

    The app answers such a webhook with the flow's fallback document and a 200, as it must
    in production, so the reply alone looks healthy: a crashing handler would pass a test
    that checks the call ended normally. The tap goes on the dispatcher's ``on_error``
    when a webhook is first watched (:meth:`watching`) and files each error under the
    call it belongs to (its CallUUID, else the thread that sent the webhook), so two
    simulators of one flow in two threads never get each other's errors.

    The dispatcher reads ``on_error`` twice (is it set? call it), so the tap never makes
    it None: with no flow hook beneath, the tap stays once installed (it only forwards
    when nothing is watched); over a flow's own hook it gives way to that hook once no
    webhook is watched, so simulators never closed leave nothing behind and the taps of
    several never stack up. A hook set meanwhile (``check.handler_errors`` swaps in its
    own for a while) is wrapped in turn, and is what the tap gives way to.
    """

    def __init__(self, dispatcher: Any) -> None:
        self._dispatcher = dispatcher

    @contextmanager
    def watching(self, into: list[str], call_uuid: str | None = None) -> Iterator[None]:
        """Errors of call ``call_uuid`` met until the block ends go into ``into`` as
        ``route: Type: message`` (without a CallUUID: those of the webhooks this thread
        sends, as in-process)."""
        dispatcher = self._dispatcher
        watch = _Watch(into, call_uuid or None, threading.get_ident())
        with _TAP_LOCK:
            hook = dispatcher.on_error
            if not isinstance(hook, _TapHook):
                hook = _TapHook(hook)
                dispatcher.on_error = hook
            hook.watches.append(watch)
        try:
            yield
        finally:
            with _TAP_LOCK:
                # By identity: two watches may well be equal.
                hook.watches[:] = [w for w in hook.watches if w is not watch]
                idle = not hook.watches and dispatcher.on_error is hook
                if idle and hook.original is not None:
                    # Else the flow's hook was replaced meanwhile: the new one stays.
                    dispatcher.on_error = hook.original

    def close(self) -> None:
        """Nothing to undo: the tap holds no watcher of a simulator once its webhook ended."""


def unhandled_event(flow: CallFlow, path: str, params: Mapping[str, str]) -> str | None:
    """Why the app answers this webhook with its fallback for want of a handler, or None.

    The app logs it and serves the fallback with a 200, as it must, so the reply alone
    looks healthy: a flow that depends on an ``Event`` value the platform may not send
    (the Dial action's, spec §6 item 8) would otherwise pass a test.
    """
    event = params.get("Event", "")
    route = _route_at(flow, path)
    if route is None or route.status_callback or event in STATUS_EVENTS:
        return None  # status events get an empty 200 whatever the handlers
    if route.handler_for(event) is not None:
        return None
    why = f"{route.name}: no handler for Event={event!r} on this route: the app served its fallback"
    if "DialStatus" in params:
        why += (
            " (a Dial action's Event may be DialAction or Redirect, spec §6 item 8: "
            "branch on DialStatus, not on the Event)"
        )
    return why


def dropped_callback(flow: CallFlow, path: str, params: Mapping[str, str]) -> str | None:
    """Why this status callback's fields were lost for want of a handler, or None (see
    :meth:`answerkit.dispatch.Route.drops`): the app answers it with an empty 200, as it
    must, and logs it once; a test sees it in ``Transcript.unhandled_callbacks``."""
    event = params.get("Event", "")
    route = _route_at(flow, path)
    if route is None or not route.drops(event):
        return None
    return f"{route.name}: {dropped_callback_note(route, event)}"


def _route_at(flow: CallFlow, path: str) -> Route | None:
    """The route at ``path`` as a URL carries it (url_for percent-encodes "/menú")."""
    prefix = getattr(flow, "_mount_prefix", None) or ""
    decoded = unquote(path)
    return next((r for r in flow.routes if prefix + r.path in (path, decoded)), None)


def outside_hint(router: Router, flow: CallFlow | None, url: str) -> str | None:
    """Why a URL outside the simulated application may be a slip for one inside it, or
    None: its host is the public URL's with another scheme, port or path, or one typo from
    it (``voice.exmaple.com`` for ``voice.example.com``). Such a URL is not requested, so a
    typo would otherwise show only as callbacks that never reached the app.

    Another server's URL gets no note, even when its path is one of the flow's routes
    (``https://crm.example.net/status``): ``/status`` or ``/events`` is as likely a path of
    any webhook receiver, and a note on every third-party callback would be noise.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # a malformed port or IPv6 address: no host to compare
        return None
    public = urlsplit(router.public_root)
    public_host = (public.hostname or "").rstrip(".")
    if not host or not public_host or parts.path in ("", "/"):
        return None  # a bare host says nothing of which of the app's paths was meant
    root = router.public_root
    path = _app_path(parts.path, public.path)
    if host == public_host:
        # Another port of the machine (localhost:9000/metrics), or a path beside the app's
        # (example.com/crm/hook when the app is example.com/voice), may be another service:
        # a note only when the path is one of the flow's routes.
        prefix = public.path.rstrip("/")
        beside = bool(prefix) and path == parts.path
        other = beside or _other_port(parts.scheme, port, public.scheme, public.port)
        if other and (flow is None or _route_at(flow, path) is None):
            return None
        why = "it names the app's host, but is not under the public URL"
    elif _near_host(host, public_host):
        why = f"its host {host} is close to the app's, {public_host} (a typo?)"
    else:
        return None
    return f"{url}: {why}: did you mean {root}{path}?"


_PORTS = {"https": 443, "http": 80}


def _other_port(scheme: str, port: int | None, public_scheme: str, public_port: int | None) -> bool:
    """True when the URL names a port of its own (not its scheme's default) that is not
    the public URL's: a server of its own, not the app reached by another scheme. With
    the public URL's scheme, the ports are compared with the defaults filled in
    (``http://localhost/metrics`` is port 80, another server than ``http://localhost:8000``)."""
    if scheme.lower() == public_scheme.lower():
        default = _PORTS.get(scheme.lower())
        return (port or default) != (public_port or default)
    if port is None or port == _PORTS.get(scheme.lower()):
        return False
    return port != (public_port or _PORTS.get(public_scheme.lower()))


def _near_host(host: str, public_host: str) -> bool:
    """True when ``host`` is ``public_host`` with one typo in one label: every other label
    the same, and the two spellings of that label longer than 3 characters (``api`` and
    ``app`` are two servers' names, not a slip) and 1 edit (or one swap of neighbours)
    apart, not only in digits (``voice1`` and ``voice2`` are numbered servers). Never for IP
    addresses: neighbours are other machines."""
    for name in (host, public_host):
        try:
            ipaddress.ip_address(name)
        except ValueError:
            continue
        return False
    mine, theirs = host.split("."), public_host.split(".")
    if len(mine) != len(theirs) or len(mine) < 2:
        return False
    differ = [(a, b) for a, b in zip(mine, theirs, strict=True) if a != b]
    if len(differ) != 1:
        return False
    a, b = differ[0]
    if _strip_digits(a) == _strip_digits(b):
        return False
    return min(len(a), len(b)) > 3 and _near(a, b, 1)


def _strip_digits(label: str) -> str:
    return "".join(ch for ch in label if not ch.isdigit())


def _app_path(path: str, public_path: str) -> str:
    """``path`` as a path of the app: without the public URL's own path in front."""
    prefix = public_path.rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :]
    return path or "/"


def _near(a: str, b: str, most: int = 2) -> bool:
    """True when ``a`` is at most ``most`` edits (insert, delete, replace, or swap of two
    neighbours) from ``b``: a slip of the keyboard, not another server's name."""
    if abs(len(a) - len(b)) > most:
        return False
    # Optimal string alignment distance, rows of the usual table.
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(current[j - 1] + 1, row[j] + 1, row[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return row[-1] <= most


# -- hand-made webhooks (the ``sign_request`` / ``signed_post`` fixtures) ----------------------


def sign_request(flow: CallFlow, path: str, token: str | None = None) -> dict[str, str]:
    """Signature headers for a webhook to ``path`` of ``flow``'s app, as Vobiz signs it.

    The signed URL is the flow's public URL plus ``path`` (``http://localhost`` plus
    ``path`` for a flow without one, which is what a test client's requests look like).
    """
    secret = token or (flow.auth_tokens[0] if flow.auth_tokens else None)
    if secret is None:
        raise ConfigurationError(f"flow {flow.name!r} has no auth token: pass token=")
    return sign((flow.public_url or "http://localhost") + path, secret)


def signed_post(
    client: Any, flow: CallFlow, path: str, params: Mapping[str, str], token: str | None = None
) -> Any:
    """POST ``params`` to ``path`` through a Flask test ``client``, signed as Vobiz would."""
    return client.post(path, data=dict(params), headers=sign_request(flow, path, token))
