"""A flow's public URLs: the URL of a route (``url_for``), and whether an absolute URL is
the flow's and which route it names.

Every URL handed to Vobiz is built here, from the flow's public URL and the prefix it is
mounted at, in the very spelling Vobiz signs; the same two decide which URLs are its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, quote, unquote, urlsplit

from answerkit._flow_settings import ENV_PUBLIC_URL
from answerkit._params import QueryParamError, with_query
from answerkit.dispatch import Route
from answerkit.errors import ConfigurationError
from answerkit.request import check_own_names
from answerkit.transfer import canonical_host

if TYPE_CHECKING:
    from answerkit.app import CallFlow


def is_own_url(flow: CallFlow, url: str) -> bool:
    """Whether ``url`` is under ``flow``'s public URL and the prefix it is mounted at (see
    :meth:`CallFlow.is_own_url <answerkit.app.CallFlow.is_own_url>`)."""
    if flow.public_url is None:
        return False
    here, there = urlsplit(flow.public_url + (flow._mount_prefix or "")), urlsplit(url)
    try:
        same_port = _port_of(here) == _port_of(there)
    except ValueError:  # a port that is no number
        return False
    base = unquote(here.path).rstrip("/")
    path = unquote(there.path)
    return (
        here.scheme == there.scheme
        and canonical_host(here.hostname) == canonical_host(there.hostname)
        and same_port
        and (path == base or path.startswith(base + "/"))
    )


def route_at_url(flow: CallFlow, url: str) -> Route | None:
    """The route an absolute URL of ``flow`` names (see :func:`is_own_url`), or None."""
    if not flow.is_own_url(url):
        return None
    base = unquote(urlsplit((flow.public_url or "") + (flow._mount_prefix or "")).path)
    return flow._routes.get(unquote(urlsplit(url).path)[len(base.rstrip("/")) :])


def url_for(flow: CallFlow, name: str, params: Mapping[str, Any]) -> str:
    """The absolute public URL of ``flow``'s route ``name``, with ``params`` as its query
    string (see :meth:`CallFlow.url_for <answerkit.app.CallFlow.url_for>`)."""
    route = flow.get_route(name)
    if flow.public_url is None:
        raise ConfigurationError(
            f"flow {flow.name!r} has no public URL: pass public_url= to CallFlow or "
            f"set {ENV_PUBLIC_URL} to the https address Vobiz reaches this app at"
        )
    try:
        check_own_names(params)
        path = _wire_path((flow._mount_prefix or "") + route.path)
        return with_query(flow.public_url + path, params)
    except QueryParamError as exc:
        raise ConfigurationError(f"url_for({name!r}): {exc}") from None


def _port_of(parts: SplitResult) -> int | None:
    """A URL's port, its scheme's default when it names none."""
    return parts.port or {"https": 443, "http": 80}.get(parts.scheme)


def _wire_path(path: str) -> str:
    """A route's path (as Flask matches it: decoded) as a URL carries it: "/menú" as
    "/men%C3%BA", "/50%off" as "/50%25off", "/a|b" as "/a%7Cb". The URL handed to Vobiz
    is then the one it sends and signs, whichever way it would have encoded the other
    (and a server that keeps the raw path, gunicorn, verifies what it received)."""
    return quote(path, safe="/:@!$&'()*+,;=")
