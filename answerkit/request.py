"""The typed webhook request: every field Vobiz sends (spec §2) as a typed attribute.

:meth:`CallRequest.from_params` never fails on odd values: a field that does not parse (say
``Duration=abc``) becomes ``None`` and stays available, raw, in ``params``. The only refusal is
a missing ``CallUUID``, which every Vobiz callback carries (:class:`MissingCallUUID`).

Optional fields are ``None`` when absent *or empty*: Vobiz sends many fields empty (``Digits``
on a speech result or a timeout, ``DialBLegUUID`` when nothing answered), and handlers should
not have to tell the two apart. The raw value, empty or not, is in ``params``.

How each field converts lives in :mod:`answerkit._request_fields`, the values of Event,
CallStatus and DialStatus in :mod:`answerkit._request_enums`, and which parameter names are
Vobiz's rather than our own in :mod:`answerkit._request_param_names`; their public names are
importable from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from answerkit._params import (
    FromParams,
    OneEach,
    ParamsLike,
    collect,
    convert_first,
)
from answerkit._request_enums import CallStatus as CallStatus
from answerkit._request_enums import DialStatus as DialStatus
from answerkit._request_enums import Event as Event
from answerkit._request_fields import _FIELDS
from answerkit._request_fields import normalise_number as normalise_number
from answerkit._request_param_names import _NO_PARAMS, _own_query, _sip_headers
from answerkit._request_param_names import VOBIZ_FIELD_NAMES as VOBIZ_FIELD_NAMES
from answerkit._request_param_names import check_own_names as check_own_names
from answerkit.errors import AnswerkitError
from answerkit.state import CallState, MemoryStore

__all__ = [
    "CallRequest",
    "CallStatus",
    "DialStatus",
    "Event",
    "MissingCallUUID",
    "StateNotCarried",
    "normalise_number",
]


class MissingCallUUID(AnswerkitError, ValueError):
    """The request has no ``CallUUID``, so it is not a Vobiz voice callback (answer 400)."""


# --------------------------------------------------------------------------- the request


_Request = TypeVar("_Request", bound="CallRequest")  # from_params of a subclass gives one


# Not slotted: from_params stores only the fields it always needs in the instance; every
# other field is converted from ``params`` when first read (FromParams, installed below).
@dataclass(frozen=True, kw_only=True, repr=False)
class CallRequest:
    """One webhook from Vobiz, typed. Build it with :meth:`from_params`.

    Numbers (``from_``, ``to``, ``forwarded_from``, ``dial_b_leg_from``/``_to``) are
    normalised with :func:`normalise_number`. ``params`` holds every raw parameter (first
    value of each; all values in ``params_multi`` / :meth:`getlist`), ``query`` the query
    string of our own route (``?attempt=2``), kept apart even for GET callbacks where Vobiz's
    fields share the query string. ``state`` is the call's :class:`~answerkit.state.CallState`
    (attached by the flow; by default an empty in-memory one).
    """

    call_uuid: str
    event: Event | str = ""
    from_: str = ""
    to: str = ""
    direction: str | None = None
    status: CallStatus | str | None = None
    caller_name: str | None = None
    forwarded_from: str | None = None
    a_leg_uuid: str | None = None
    a_leg_request_uuid: str | None = None
    request_uuid: str | None = None
    session_start: str | None = None
    stir_attestation: str | None = None
    stir_verification: str | None = None
    parent_auth_id: str | None = None
    auth_id: str | None = None
    timestamp: str | None = None
    bill_rate: Decimal | None = None
    total_cost: Decimal | None = None
    country_code: str | None = None
    route_type: str | None = None
    hangup_cause: str | None = None
    hangup_cause_code: int | None = None
    hangup_cause_name: str | None = None
    hangup_source: str | None = None
    duration: int | None = None
    bill_duration: int | None = None
    start_time: str | None = None
    answer_time: str | None = None
    end_time: str | None = None
    input_type: str | None = None
    digits: str | None = None
    speech: str | None = None
    speech_confidence: float | None = None
    billed_amount: Decimal | None = None
    stable_speech: str | None = None
    unstable_speech: str | None = None
    stability: float | None = None
    sequence_number: int | None = None
    dial_status: DialStatus | str | None = None
    dial_ring_status: bool | None = None
    dial_hangup_cause: str | None = None
    dial_a_leg_uuid: str | None = None
    dial_b_leg_uuid: str | None = None
    dial_b_leg_status: str | None = None
    dial_b_leg_from: str | None = None
    dial_b_leg_to: str | None = None
    dial_b_leg_position: int | None = None
    dial_b_leg_duration: int | None = None
    dial_b_leg_bill_duration: int | None = None
    dial_b_leg_hangup_cause: str | None = None
    dial_b_leg_hangup_cause_code: int | None = None
    dial_b_leg_hangup_cause_name: str | None = None
    dial_b_leg_hangup_source: str | None = None
    dial_action: str | None = None
    dial_digits_match: str | None = None
    dial_digits_pressed_by: str | None = None
    recording_id: str | None = None
    record_url: str | None = None
    recording_duration: int | None = None
    recording_duration_ms: int | None = None
    recording_start_ms: int | None = None
    recording_end_ms: int | None = None
    recording_end_reason: str | None = None
    transcription: str | None = None
    transcription_id: str | None = None
    transcription_url: str | None = None
    conference_uuid: str | None = None
    conference_name: str | None = None
    conference_member_id: str | None = None
    conference_action: str | None = None
    conference_first_member: bool | None = None
    conference_last_member: bool | None = None
    stream_id: str | None = None
    service_url: str | None = None
    checkpoint_name: str | None = None
    status_callback_url: str | None = None
    status_callback_method: str | None = None
    error: str | None = None
    machine: bool | None = None
    sip_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    params_multi: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), compare=False
    )
    query: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    method: str = "POST"
    path: str = "/"
    state: CallState = field(init=False, compare=False)
    #: Set on a copy made by pickle or deepcopy (see __reduce__), and kept by
    #: dataclasses.replace of it: its state did not travel, and reading it says so.
    _state_not_carried: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._state_not_carried:
            object.__setattr__(self, "state", CallState(MemoryStore(), self.call_uuid))

    @classmethod
    def from_params(
        cls: type[_Request],
        params: ParamsLike,
        *,
        method: str = "POST",
        query: ParamsLike | None = None,
        path: str = "/",
        state: CallState | None = None,
    ) -> _Request:
        """Build the typed request from the webhook's parameters (form body or query string).

        Raises :class:`MissingCallUUID` when ``CallUUID`` is absent or empty, unless the
        request is a transcription (it carries ``transcription_id``; its ``call_uuid`` is
        then ``""``); nothing else about the values is ever an error.
        """
        raw, repeated = collect(params)
        call_uuid = raw.get("CallUUID", "").strip()
        # A Record's transcriptionUrl gets four snake_case fields and, per the spec's list,
        # no CallUUID (spec §2.6): refused, Vobiz would retry and drop the transcription.
        if not call_uuid and not raw.get("transcription_id"):
            raise MissingCallUUID(
                "the CallUUID field is missing or empty: this is not a Vobiz callback (every "
                "Vobiz voice webhook carries CallUUID). Check the URL configured at Vobiz, "
                "and that a GET callback keeps its query string."
            )
        event = raw.get("Event", "").strip()  # as CallUUID is: "Hangup " is still a Hangup
        params_view = MappingProxyType(raw)
        fields: dict[str, Any] = {
            "call_uuid": call_uuid,
            "event": _EVENTS.get(event, event),
            "params": params_view,
            "params_multi": (
                OneEach(params_view)
                if repeated is None
                else MappingProxyType(
                    {k: tuple(repeated[k]) if k in repeated else (v,) for k, v in raw.items()}
                )
            ),
            "query": _own_query(query, method) if query else _NO_PARAMS,
            "method": method.upper(),
            "path": path,
        }
        if cls is not CallRequest:  # a subclass may add fields or checks: take __init__
            for attr, compute in _LAZY:
                fields[attr] = compute(params_view)
            request = cls(**fields)
            if state is not None:
                object.__setattr__(request, "state", state)
            return request
        request = object.__new__(cls)
        request.__dict__.update(fields)
        if state is not None:
            request.__dict__["state"] = state
        return request

    if not TYPE_CHECKING:  # hidden from mypy so that a misspelt attribute stays an error

        def __getattr__(self, name: str) -> Any:
            # Only reached for ``state`` on a request built by from_params without one: the
            # default private in-memory state is made on first use.
            if name != "state":
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            if self._state_not_carried:
                raise StateNotCarried(
                    "call.state is not carried by a pickled or deep-copied CallRequest: it "
                    "is the flow's store, bound to the webhook. Pass what the job needs from "
                    "call.state along with the call, or attach the store's state for this "
                    "call: call = call.with_state(flow.store.state(call.call_uuid))"
                )
            state = CallState(MemoryStore(), self.call_uuid)
            object.__setattr__(self, "state", state)
            return state

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for a background job (Celery, RQ, multiprocessing): every field as it is
        # (one set with dataclasses.replace, a subclass's own), the read-only mappings as
        # dicts. The state is a live view on the flow's store, which cannot travel: the
        # copy says so when its state is read (StateNotCarried), rather than hand out an
        # empty private one whose writes would go nowhere.
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        for name in _MAPPINGS:
            values[name] = dict(values[name])
        values["_state_not_carried"] = False  # set once made (see _unpickled)
        return (_unpickled, (type(self), values))

    def __copy__(self: _Request) -> _Request:
        # A shallow copy shares the state, as it did before __reduce__ was written.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def _attach_state(self, state: CallState) -> None:
        """Bind ``state`` to this request in place (the flow's dispatcher does, once)."""
        object.__setattr__(self, "state", state)

    def with_state(self: _Request, state: CallState) -> _Request:
        """A copy of this request carrying ``state``."""
        copy = dataclasses.replace(self, _state_not_carried=False)
        object.__setattr__(copy, "state", state)
        return copy

    def getlist(self, name: str) -> list[str]:
        """Every value sent for parameter ``name`` (usually one; empty list if absent)."""
        return list(self.params_multi.get(name, ()))

    @property
    def is_hangup(self) -> bool:
        """True for the ``Hangup`` event (the one authoritative end-of-call signal)."""
        return self.event == Event.Hangup

    def __repr__(self) -> str:
        # Numbers and raw params stay out of reprs: they end up in logs.
        return (
            f"CallRequest(call_uuid={self.call_uuid!r}, event={str(self.event)!r}, "
            f"status={None if self.status is None else str(self.status)!r}, "
            f"direction={self.direction!r}, method={self.method!r}, path={self.path!r})"
        )


_EVENTS: dict[str, Event] = {member.value: member for member in Event}
#: The fields kept as read-only mappings (dicts while pickled).
_MAPPINGS = ("sip_headers", "params", "params_multi", "query")


class StateNotCarried(AnswerkitError, AttributeError):
    """``call.state`` read on a request that was pickled or deep-copied: the state belongs
    to the flow's store, and only the request's own fields travel."""


def _unpickled(cls: type[CallRequest], values: dict[str, Any]) -> CallRequest:
    for name in _MAPPINGS:
        values[name] = MappingProxyType(values[name])
    # Made as any request is (a subclass's __post_init__ may read its private state),
    # then marked: its state did not travel.
    request = cls(**values)
    request.__dict__.pop("state", None)
    object.__setattr__(request, "_state_not_carried", True)
    return request


_LAZY: tuple[tuple[str, Callable[[Mapping[str, str]], Any]], ...] = (
    ("from_", lambda params: normalise_number(params.get("From", ""))),
    ("to", lambda params: normalise_number(params.get("To", ""))),
    ("sip_headers", _sip_headers),
    *(
        (attr, partial(convert_first, names=names, convert=convert))
        for attr, names, convert in _FIELDS
    ),
)
for _attr, _compute in _LAZY:
    setattr(CallRequest, _attr, FromParams(_attr, _compute))
del _attr, _compute
