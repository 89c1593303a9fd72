"""External triggers: move a live call from outside a webhook (a CRM, an operator console).

Two ways in: the Python call :meth:`TransferTrigger.move`, and an authenticated HTTP
endpoint of the flow (``POST {path}`` with a JSON body ``{"call_uuid": ..., "aleg": ...,
"bleg": ..., "params": {...}}`` and ``Authorization: Bearer <secret>``; a form body with
``call_uuid``, ``aleg`` and ``bleg`` (no ``params``), and ``CallUUID`` for ``call_uuid``, as
Vobiz spells it, are taken too). "The
call already ended" is an ordinary outcome on both: ``"ended"``, HTTP 200. ``routes=``
limits the routes the endpoint may send calls to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from flask import Response as FlaskResponse
from flask import jsonify, request

from answerkit._flow_flask import endpoint_name
from answerkit._keywords import advise_keywords
from answerkit._log import QuietLog
from answerkit.errors import (
    APIError,
    ConfigurationError,
    ConnectError,
    ServerError,
    TransferArgumentError,
    TransportError,
    VobizError,
)
from answerkit.recipes._targets import hold_targets

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = QuietLog("answerkit")

DEFAULT_PATH = "/_answerkit/transfer"


@dataclass(frozen=True)
class TriggerOutcome:
    """What a trigger did: ``transferred`` or ``ended`` (the call was already gone, or not
    answered yet)."""

    status: Literal["transferred", "ended"]
    call_uuid: str
    api_id: str | None = None


class TransferTrigger:
    """Moves live calls of ``flow`` onto its routes from outside a webhook."""

    @advise_keywords("TransferTrigger", {"secret_key": "use secret=", "token": "use secret="})
    def __init__(
        self,
        flow: CallFlow,
        *,
        secret: str | None,
        path: str = DEFAULT_PATH,
        routes: Collection[str] | None = None,
    ) -> None:
        if secret is not None and len(secret) < 16:
            raise ConfigurationError(
                "TransferTrigger secret must be at least 16 characters "
                "(make one with secrets.token_urlsafe())"
            )
        if secret is not None and not all("!" <= ch <= "~" for ch in secret):
            # A header arrives as Latin-1 text and clients disagree on how to send anything
            # beyond ASCII (UTF-8 bytes, Latin-1, or not at all); a leading or trailing space
            # is stripped on the way. Such a secret would be refused for some or all clients.
            raise ConfigurationError(
                "TransferTrigger secret must be printable ASCII without spaces "
                "(make one with secrets.token_urlsafe())"
            )
        if isinstance(routes, str):
            raise ConfigurationError(
                f"TransferTrigger routes= takes route names, got the one string {routes!r}: "
                f"write routes=[{routes!r}]"
            )
        self.flow = flow
        self._secret = secret
        self._path = path
        #: The routes the endpoint may move calls to (None: any route of the flow), by name.
        self.routes = None if routes is None else frozenset(routes)
        hold_targets(flow, self.routes or ())
        flow.add_check(self._validate)
        if secret is not None:
            # One endpoint name per path: two triggers on one flow (a CRM and an operator
            # console, each with its own secret) would otherwise clash when mounted.
            name = "answerkit_transfer_trigger"
            if path != DEFAULT_PATH:
                name = endpoint_name(name, path)
            if any(p == path for p, *_ in flow._endpoints):
                raise ConfigurationError(
                    f"TransferTrigger: flow {flow.name!r} already serves an endpoint at "
                    f"{path!r}; give each trigger its own path="
                )
            flow.add_endpoint(path, self._view, name=name)

    def __repr__(self) -> str:  # never the secret
        routes = "any route" if self.routes is None else ", ".join(sorted(self.routes))
        return f"TransferTrigger(flow={self.flow.name!r}, path={self._path!r}, to: {routes})"

    def _validate(self, flow: CallFlow) -> None:
        # Each must take the leg it receives: a route answering Event=Transfer, or a URL of
        # a host the flow may transfer to (skipped before: a URL of another host made every
        # request naming it a 400 at the moment of need).
        for name in sorted(self.routes or ()):
            unusable = self._unusable(name)
            if unusable is not None:
                raise ConfigurationError(f"TransferTrigger routes= entry: {unusable}")
        flow.transfers.warn_without_client("TransferTrigger")  # move() needs it too

    def _unusable(self, leg: str) -> str | None:
        """Why ``leg`` cannot take a moved leg, or None: a route of the flow that answers
        Event=Transfer, by name, path or URL, or a URL of a host ``transfer_hosts`` allows
        (whose answer is that host's own)."""
        if "://" in leg:
            try:
                self.flow.transfers.target_url(leg)  # malformed, credentials, host not allowed
            except (TransferArgumentError, ConfigurationError) as exc:
                return str(exc)
            if not self.flow.is_own_url(leg):
                return None  # another service's, on a host the flow may transfer to
            route = self.flow.route_at_url(leg)
            if route is None:
                # A 404 to the moved leg, and the call dropped.
                return f"{leg!r} is a URL of the flow where it serves no route"
        # Not a recipe's step: the caller would be stranded there (see check_target).
        return self.flow.transfers.unusable(leg, steps=False)

    def move(
        self,
        call_uuid: str,
        aleg: str | None = None,
        bleg: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> TriggerOutcome:
        """Transfer the call's leg(s) to routes; ``ended`` if the call is already gone (or
        not answered yet: Vobiz answers both with one 404)."""
        result = self.flow.try_transfer(call_uuid, aleg=aleg, bleg=bleg, params=params)
        if result is None:
            return TriggerOutcome("ended", call_uuid)
        return TriggerOutcome("transferred", call_uuid, result.api_id)

    def _view(self) -> FlaskResponse:
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        expected = hashlib.sha256((self._secret or "").encode()).digest()
        offered = hashlib.sha256(given.strip().encode("utf-8", "surrogateescape")).digest()
        # Digests, equal in length, compared: compare_digest returns at once on a length
        # that differs, which told a prober the secret's length. The scheme is
        # case-insensitive (RFC 9110 §11.1): "bearer <secret>" is as good.
        if scheme.lower() != "bearer" or not hmac.compare_digest(offered, expected):
            return _json({"error": "missing or wrong Authorization: Bearer <secret>"}, 401)
        body: Any = request.get_json(silent=True)
        if body is None and request.form:  # a CRM that posts a form: its fields as given
            body = request.form.to_dict()
        if not isinstance(body, dict):
            return _json({"error": f"send JSON like {_EXAMPLE}"}, 400)
        if "call_uuid" not in body and "CallUUID" in body:
            body["call_uuid"] = body["CallUUID"]  # Vobiz's own spelling
        # Other fields are left alone (a CRM may forward a whole Vobiz webhook form), but
        # one that is a field misspelt ("a_leg", "aleg_url") would read as no leg at all.
        misspelt = sorted(str(k) for k in body if k not in _FIELDS and _loose(k) in _LOOSE)
        if misspelt:
            named = ", ".join(f"{k!r} (write {_LOOSE[_loose(k)]!r})" for k in misspelt)
            why = f"unknown field {named}: the fields are {', '.join(_FIELDS)}, as in {_EXAMPLE}"
            return _json({"error": why}, 400)
        if not isinstance(body.get("call_uuid"), str) or not body["call_uuid"]:
            got = json.dumps(body.get("call_uuid"))
            why = f"call_uuid must be the call's CallUUID as a string, got {got}, as in {_EXAMPLE}"
            return _json({"error": why}, 400)
        params = body.get("params")
        if params is not None and not isinstance(params, dict):
            return _json({"error": "params must be a JSON object"}, 400)
        aleg, bleg = body.get("aleg"), body.get("bleg")
        if not all(v is None or isinstance(v, str) for v in (aleg, bleg)):
            return _json({"error": "aleg and bleg must be route names (strings)"}, 400)
        if aleg is None and bleg is None:
            return _json(
                {"error": f'name a route for "aleg", "bleg" or both, as in {_EXAMPLE}'}, 400
            )
        allowed = self.routes
        if allowed is not None and any(v is not None and v not in allowed for v in (aleg, bleg)):
            names = ", ".join(sorted(allowed))
            return _json({"error": f"this trigger moves calls only to: {names}"}, 403)
        for field, leg in (("aleg", aleg), ("bleg", bleg)):
            # With routes=None as well: a URL of the flow's own host that is no route would
            # be a 404 to the moved leg, and a route taking no transfer the apology.
            unusable = None if leg is None else self._unusable(leg)
            if unusable is not None:
                return _json({"error": f"{field}: {unusable}"}, 400)
        try:
            self.flow.client  # noqa: B018  (made on first use: this server's own settings)
        except ConfigurationError as exc:
            # Not the caller's mistake: a 4xx would tell a CRM to fix a request that is fine.
            log.error("transfer trigger: cannot move calls: %s", exc)
            return _json({"error": f"this server cannot move calls: {exc}"}, 503)
        try:
            outcome = self.move(body["call_uuid"], aleg=aleg, bleg=bleg, params=params)
        except (TransferArgumentError, ConfigurationError) as exc:
            return _json({"error": str(exc)}, 400)
        except ConnectError as exc:  # nothing was sent: safe to try again
            log.warning("transfer trigger: Vobiz unreachable: %s", exc)
            return _json({"error": str(exc)}, 504)
        except (ServerError, TransportError) as exc:
            # Sent, and the answer lost or a 5xx: the move may have been made. A 5xx here
            # would have the caller's CRM (which retries on one) move the call again.
            log.warning("transfer trigger: outcome unknown (not repeated): %s", exc)
            return _json(
                {"status": "unknown", "call_uuid": body["call_uuid"], "error": str(exc)}, 202
            )
        except APIError as exc:
            log.warning("transfer trigger: Vobiz refused: %s", exc)
            return _json({"error": str(exc), "vobiz_status": exc.status}, 502)
        except VobizError as exc:
            log.warning("transfer trigger: Vobiz unreachable: %s", exc)
            return _json({"error": str(exc)}, 504)
        return _json(
            {"status": outcome.status, "call_uuid": outcome.call_uuid, "api_id": outcome.api_id},
            200,
        )


#: The fields of a request to the endpoint (CallUUID, Vobiz's spelling, is taken for call_uuid).
_FIELDS = ("call_uuid", "aleg", "bleg", "params")
_EXAMPLE = '{"call_uuid": "...", "aleg": "<route name>"}'


def _loose(name: object) -> str:
    """A field name without case, '_' or '-' (and the Transfer API's "url" suffix)."""
    text = str(name).strip().lower().replace("_", "").replace("-", "")
    return text.removesuffix("url") if text.endswith("legurl") else text


#: Loose spellings of the fields a misspelling would silently drop (call_uuid's is refused
#: as missing anyway, and CallUUID, Vobiz's own spelling, is taken).
_LOOSE = {_loose(f): f for f in ("aleg", "bleg", "params")}


def _json(payload: dict[str, Any], status: int) -> FlaskResponse:
    response = jsonify(payload)
    response.status_code = status
    return response
