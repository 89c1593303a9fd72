"""How the simulator reaches the application: in-process WSGI, or real HTTP.

Both transports take the same request (method, target, form fields, headers) and give
back the same :class:`Reply`, so the engine cannot tell them apart. The
:class:`Router` decides, for every URL a document names, which public URL Vobiz
would have signed and where the request really goes; URLs outside the application
are never requested (tests stay on loopback). The signed-request helpers at the end
reach the app the other way, for a test that sends a webhook by hand.

What a healthy-looking reply hides (a handler's error, an event no handler takes) is
seen in :mod:`~answerkit.testing.sim_handler_errors`; the note on a URL outside the
app that looks meant for it is :mod:`~answerkit.testing.sim_outside_hint`'s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_to_bytes, urlencode, urlsplit

import requests

from answerkit.client import refuse_cookies
from answerkit.errors import ConfigurationError
from answerkit.signature import sign

# Imported from here by the tests, from before the tap had a module of its own.
from answerkit.testing.sim_handler_errors import HandlerErrorTap as HandlerErrorTap

if TYPE_CHECKING:
    from werkzeug.test import Client, TestResponse

    from answerkit.app import CallFlow

__all__ = [
    "HTTPTransport",
    "HandlerErrorTap",
    "Reply",
    "Router",
    "SignRequest",
    "SignedPost",
    "Transport",
    "WSGITransport",
    "normal_url",
    "sign_request",
    "signed_post",
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
    client: Client, flow: CallFlow, path: str, params: Mapping[str, str], token: str | None = None
) -> TestResponse:
    """POST ``params`` to ``path`` through a Flask test ``client``, signed as Vobiz would."""
    return client.post(path, data=dict(params), headers=sign_request(flow, path, token))


class SignRequest(Protocol):
    """The ``sign_request`` fixture's type, to annotate a test's parameter with."""

    def __call__(self, flow: CallFlow, path: str, token: str | None = None) -> dict[str, str]: ...


class SignedPost(Protocol):
    """The ``signed_post`` fixture's type, to annotate a test's parameter with."""

    def __call__(
        self,
        client: Client,
        flow: CallFlow,
        path: str,
        params: Mapping[str, str],
        token: str | None = None,
    ) -> TestResponse: ...
