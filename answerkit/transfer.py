"""Transfer to a route: turn route names into public URLs and call the Transfer API.

Everything that can be checked is checked here, before anything is sent: the route
exists, the flow has a public URL, a raw URL's host is on the allow-list. The
client then checks the arguments exactly as the API would.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from answerkit import _local_run
from answerkit._api_args import check_call_uuid, check_method
from answerkit._log import QuietLog
from answerkit._params import QueryParamError, check_query, with_query
from answerkit.client import TransferResult, VobizClient
from answerkit.dispatch import LateTransferRefused, handler_given_up, loggable
from answerkit.errors import CallNotActiveError, ConfigurationError, TransferArgumentError
from answerkit.request import check_own_names

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = QuietLog("answerkit")


def canonical_host(host: str | None) -> str:
    """A URL's hostname as compared: lower case, an IPv6 address in its one spelling.
    Nothing more: Python's IDNA codec (2003) maps names that fetchers (IDNA 2008) keep
    apart ('faß' to 'fass'), so an allow-list compares host names as written."""
    text = (host or "").lower()
    with contextlib.suppress(ValueError):
        text = str(ipaddress.IPv6Address(text))
    return text


def _allowed_host(entry: object) -> tuple[str, int | None]:
    """One ``transfer_hosts`` entry as (host, port): the host as urlsplit gives a URL's
    hostname (a name in lower case, or an IPv6 address without its brackets), the port
    None when the entry names none (then only the scheme's default port is allowed). A
    scheme or path is refused."""
    text = entry.strip().lower() if isinstance(entry, str) else ""
    port: int | None = None
    head, colon, tail = text.rpartition(":")
    # host:port, or [v6]:port; a bare IPv6 address has colons but no port of its own.
    if colon and tail.isascii() and tail.isdigit() and (not head.count(":") or head.endswith("]")):
        text, port = head, int(tail)
        if not 0 < port <= 65535:
            port = -1
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        text = str(ipaddress.IPv6Address(text))  # one spelling: 2001:db8:0::1 is 2001:db8::1
    except ValueError:
        if not text or any(c in text for c in "/:@ []") or not text.isprintable():
            port = -1
    if port == -1:
        raise ConfigurationError(
            f"transfer_hosts: each entry is a host name such as 'crm.example.com', or one "
            f"with a port, 'crm.example.com:8443' (no scheme or path), got {entry!r}"
        )
    return text, port


_DEFAULT_PORTS = {"https": 443, "http": 80}


#: Set while a recipe moves a leg to a step of its own (a WarmTransfer's hold, its
#: landing): the one transfer that may go there. A user's transfer to one stranded the
#: caller (on hold in a room no agent was called to, for good).
_RECIPE_MOVE: ContextVar[bool] = ContextVar("answerkit_recipe_move", default=False)


@contextmanager
def recipe_move() -> Iterator[None]:
    """Within the block, a transfer may take a leg to a recipe's own step."""
    token = _RECIPE_MOVE.set(True)
    try:
        yield
    finally:
        _RECIPE_MOVE.reset(token)


class TransferPlanner:
    """Builds and sends the transfers of one flow."""

    def __init__(
        self, flow: CallFlow, *, client: VobizClient | None, allowed_hosts: Sequence[str]
    ) -> None:
        self._flow = flow
        self._client = client
        entries = [_allowed_host(h) for h in allowed_hosts]
        #: Hosts allowed on their scheme's default port, and (host, port) pairs allowed.
        self.allowed_hosts = frozenset(host for host, port in entries if port is None)
        self.allowed_ports = frozenset((h, p) for h, p in entries if p is not None)

    @property
    def client(self) -> VobizClient:
        """The flow's REST client (from VOBIZ_AUTH_ID/VOBIZ_AUTH_TOKEN unless given)."""
        if self._client is None:
            self._client = VobizClient()
        return self._client

    @client.setter
    def client(self, client: VobizClient) -> None:
        self._client = client

    def warn_without_client(self, who: str) -> None:
        """Log a warning, naming ``who``, if no client can be made: a recipe that moves calls
        says so when mounted, not on the first live call. Not an error: ``answerkit run``,
        ``routes`` and a test harness that lends a client later serve without one."""
        if self._client is not None or _local_run.active():
            return
        try:
            # Made and dropped, not kept: a test harness lends its client only to a flow
            # that has none yet.
            VobizClient().close()
        except ConfigurationError as exc:
            log.warning(
                "%s moves calls with the Vobiz REST API, but %s: every transfer it makes "
                "will fail until they are set (or pass CallFlow(client=VobizClient(...)); "
                "in tests, a simulator with a LocalVobiz lends the flow one, as the "
                "call_simulator fixture does)",
                who,
                exc,
            )

    def peek_client(self) -> VobizClient | None:
        """The client set, or None if there is none yet: unlike :attr:`client`, never makes
        one (a test harness looks without changing what other threads see)."""
        return self._client

    def swap_client(self, client: VobizClient | None) -> VobizClient | None:
        """Set the client (None: made from the environment on next use) and return the one
        set before, None if there was none (a test harness lends the flow its own)."""
        previous, self._client = self._client, client
        return previous

    def _names_a_route(self, leg: str) -> bool:
        """Whether a leg is a route of the flow: by name or path, or by its URL."""
        if "://" not in leg:
            return True
        try:
            return self._flow.route_at_url(leg) is not None
        except ValueError:  # no URL at all ("https://[x"): target_url says so
            return False

    def target_url(
        self, target: str, params: Mapping[str, Any] | None = None, *, argument: str = "url"
    ) -> str:
        """The absolute URL for a route name, or a checked absolute URL.

        ``argument`` is where ``target`` came from (``aleg``/``bleg``): a refusal's
        message names it (the error's ``field`` stays ``"url"``).
        """
        if "://" in target:
            return self._checked_raw_url(target, params, argument)
        try:
            self._flow.get_route(target)
        except ConfigurationError as exc:
            # The call's argument, not the flow's setup: one family of errors for every
            # argument a transfer refuses before sending (an except ArgumentError missed it).
            raise TransferArgumentError(f"{argument}: {exc}", field=argument) from None
        return self._flow.url_for(target, **dict(params or {}))

    def transfer(
        self,
        call_uuid: str,
        *,
        aleg: str | None,
        bleg: str | None,
        params: Mapping[str, Any] | None,
        method: str,
        client: VobizClient | None,
    ) -> TransferResult:
        """Transfer the named legs; raises CallNotActiveError if the call ended."""
        # First, so that a CallUUID a lookup failed to find (None) is named as the field at
        # fault, not met in the log line below as an AttributeError.
        check_call_uuid(call_uuid, transfer=True)
        for name, leg in (("aleg", aleg), ("bleg", bleg)):
            if leg is not None and not isinstance(leg, str):
                raise TransferArgumentError(
                    f"{name} must be a route name or an absolute URL, as text, got {leg!r}",
                    field=name,
                )
        method = check_method(method, "method", transfer=True)  # named as passed here
        if aleg is None and bleg is None:
            raise TransferArgumentError(
                "name a route (or URL) for aleg, bleg or both, e.g. "
                "flow.transfer(call_uuid, aleg='hold')",
                field="aleg",
            )
        if params is not None and not isinstance(params, Mapping):
            raise TransferArgumentError(
                f"params must be a dict of query parameters, such as {{'reason': 'vip'}}, "
                f"got {params!r}",
                field="params",
            )
        try:
            check_query(params or {})
            # A route of the flow, by name or by URL: its url_for would refuse them, and a
            # GET callback there would read our Digits as the caller's.
            if any(leg is not None and self._names_a_route(leg) for leg in (aleg, bleg)):
                check_own_names(params or {})
        except QueryParamError as exc:
            raise TransferArgumentError(str(exc), field="params") from None
        aleg_url = self.target_url(aleg, params, argument="aleg") if aleg is not None else None
        bleg_url = self.target_url(bleg, params, argument="bleg") if bleg is not None else None
        for argument, leg in (("aleg", aleg), ("bleg", bleg)):
            why = None if leg is None else self.unusable(leg, steps=_RECIPE_MOVE.get())
            if why is not None:
                # Sent, it was taken (202) and the leg then dropped (8013 for a status
                # route) or got the flow's apology (a route without a Transfer handler).
                raise TransferArgumentError(f"{argument}: {why}", field=argument)
        if handler_given_up():
            raise LateTransferRefused(
                f"transfer of call {call_uuid} refused: the handler asking for it is past its "
                "deadline, and the caller was answered with the fallback"
            )
        api = client or self.client
        log.info(
            "flow %s: transferring call %s (aleg=%s bleg=%s)",
            self._flow.name,
            loggable(call_uuid),
            aleg,
            bleg,
        )
        return api.transfer(
            call_uuid,
            aleg_url=aleg_url,
            aleg_method=method,
            bleg_url=bleg_url,
            bleg_method=method,
        )

    def unusable(self, leg: str, *, steps: bool = False) -> str | None:
        """Why a route of the flow named by ``leg`` (a name, a path, or a URL of the flow)
        cannot take a moved leg, or None: it must answer ``Event=Transfer`` with a
        document (a sound route's music is one), and unless ``steps`` not be a recipe's
        step. Another service's URL is that service's to answer."""
        from answerkit.recipes._targets import check_target  # the recipes import this module

        by_url = "://" in leg
        if by_url:
            route = self._flow.route_at_url(leg) if self._flow.is_own_url(leg) else None
            if route is None:
                return None  # another service's, or another flow's of the app
            leg = route.name
        target = self._flow._by_name.get(leg) or self._flow._routes.get(leg)
        if target is not None and target.sound:
            # Music to park a leg on: Play, Speak and Wait are a document too, if it has a
            # handler for the Transfer that brings the leg.
            if target.handler_for("Transfer") is not None:
                return None
            events = ", ".join(repr(e) for e in target.events if e is not None)
            return (
                f"the route {leg!r} handles only Event={events}, and a moved leg arrives "
                "with Event='Transfer' (the sound fallback would answer): give that route a "
                "handler without event= or one for 'Transfer'"
            )
        try:
            check_target(
                self._flow,
                "transfer",
                "the route",
                leg,
                event="Transfer",
                steps=steps,
                by_url=by_url,
            )
        except ConfigurationError as exc:
            return str(exc).removeprefix("transfer: ")
        return None

    def try_transfer(
        self,
        call_uuid: str,
        *,
        aleg: str | None,
        bleg: str | None,
        params: Mapping[str, Any] | None,
        method: str,
        client: VobizClient | None,
    ) -> TransferResult | None:
        """Transfer, returning None when the call already ended."""
        try:
            return self.transfer(
                call_uuid, aleg=aleg, bleg=bleg, params=params, method=method, client=client
            )
        except CallNotActiveError:
            log.info(
                "flow %s: call %s is not live (ended, or not answered yet); nothing to transfer",
                self._flow.name,
                loggable(call_uuid),
            )
            return None

    def _checked_raw_url(self, url: str, params: Mapping[str, Any] | None, argument: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise TransferArgumentError(
                f"{argument}: transfer URL {url!r} is malformed", field="url"
            ) from None
        # Fetchers disagree with urllib about "user@host" and backslashes
        # ("https://evil.example\\@partner.example/"), so neither may pass the allow-list.
        if "@" in parts.netloc or "\\" in url or parts.scheme not in ("https", "http"):
            raise TransferArgumentError(
                f"{argument}: transfer URL {url!r} must be a plain http(s) URL without "
                "credentials or backslashes",
                field="url",
            )
        host = canonical_host(parts.hostname)
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        public = urlsplit(self._flow.public_url or "")
        own = canonical_host(public.hostname)
        allowed = (
            (host in self.allowed_hosts and port == _DEFAULT_PORTS[parts.scheme])
            or (host, port) in self.allowed_ports
            # The flow's own server: its public URL's host, scheme and port, any path (the
            # app's other flows too). The same host on another port is another service: an
            # admin port, a database.
            or (
                host == own
                and parts.scheme == public.scheme
                and port == (public.port or _DEFAULT_PORTS.get(public.scheme))
            )
        )
        if not allowed:
            known = host in self.allowed_hosts or any(h == host for h, _p in self.allowed_ports)
            entry = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 bracketed
            why = (
                f"port {port} of {host!r} is not allowed (transfer_hosts allows a bare host on "
                f"its default port only): add '{entry}' to CallFlow(transfer_hosts=[...])"
                if known
                else f"{url!r} is on the flow's host but not its public URL's scheme and "
                f"port: transfer to a route of the flow, or add '{entry}' to transfer_hosts"
                if host == own
                else f"transfer URL host {host!r} is not allowed: add it to "
                "CallFlow(transfer_hosts=[...]) or transfer to a route of the flow"
            )
            raise TransferArgumentError(f"{argument}: {why}", field="url")
        return with_query(url, params) if params else url
