"""The typed webhook request: every field Vobiz sends (spec §2) as a typed attribute.

:meth:`CallRequest.from_params` never fails on odd values: a field that does not parse (say
``Duration=abc``) becomes ``None`` and stays available, raw, in ``params``. The only refusal is
a missing ``CallUUID``, which every Vobiz callback carries (:class:`MissingCallUUID`).

Optional fields are ``None`` when absent *or empty*: Vobiz sends many fields empty (``Digits``
on a speech result or a timeout, ``DialBLegUUID`` when nothing answered), and handlers should
not have to tell the two apart. The raw value, empty or not, is in ``params``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from answerkit._params import (
    FromParams,
    OneEach,
    ParamsLike,
    QueryParamError,
    collect,
    convert_first,
)
from answerkit.errors import AnswerkitError
from answerkit.state import CallState, MemoryStore

__all__ = [
    "CallRequest",
    "CallStatus",
    "DialStatus",
    "Event",
    "MissingCallUUID",
    "normalise_number",
]


class Event(str, Enum):
    """The ``Event`` parameter. A value Vobiz adds later stays a plain ``str``."""

    StartApp = "StartApp"
    Ring = "Ring"
    Hangup = "Hangup"
    Transfer = "Transfer"
    Redirect = "Redirect"
    DialAction = "DialAction"
    DialAnswer = "DialAnswer"
    DialConnected = "DialConnected"
    DialDigitsMatch = "DialDigitsMatch"
    DialHangup = "DialHangup"
    RecordStop = "RecordStop"
    ConferenceEnter = "ConferenceEnter"
    ConferenceExit = "ConferenceExit"
    ConferenceRemoteSounds = "ConferenceRemoteSounds"
    ConferenceDigitsMatch = "ConferenceDigitsMatch"
    StartStream = "StartStream"
    PlayedStream = "PlayedStream"
    ClearedAudio = "ClearedAudio"
    DegradedStream = "DegradedStream"
    DroppedStream = "DroppedStream"
    StopStream = "StopStream"
    MachineDetection = "MachineDetection"
    Record = "Record"

    def __str__(self) -> str:
        return self.value


class CallStatus(str, Enum):
    """The ``CallStatus`` parameter (inbound answer requests arrive ``ringing``, spec §6.12)."""

    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    TIMEOUT = "timeout"
    NO_ANSWER = "no-answer"
    CANCEL = "cancel"

    def __str__(self) -> str:
        return self.value


class DialStatus(str, Enum):
    """The ``DialStatus`` of a Dial ``action`` request; handle every value."""

    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    CANCEL = "cancel"
    TIMEOUT = "timeout"
    NO_ANSWER = "no-answer"

    def __str__(self) -> str:
        return self.value


class MissingCallUUID(AnswerkitError, ValueError):
    """The request has no ``CallUUID``, so it is not a Vobiz voice callback (answer 400)."""


# --------------------------------------------------------------------------- numbers

_NUMBER_PUNCTUATION = str.maketrans("", "", " -().\u00a0\t")


def normalise_number(s: str) -> str:
    """Normalise a phone number to E.164 with ``+`` where that is unambiguous.

    Vobiz sends E.164 without the ``+`` (``917983165036`` -> ``+917983165036``). Left as
    given: SIP and other URIs (``sip:alice@example.com``), numbers with a national ``0`` or
    ``00`` prefix (``07971442086``: the country is unknown), short codes and extensions
    (fewer than 7 digits), numbers written with a bracketed trunk ``(0)`` and anything that
    is not a number (``anonymous``). Spaces, dashes,
    dots and brackets are dropped from numbers that are normalised.
    """
    value = s.strip()
    if not value or ":" in value or "@" in value:
        return value
    if "(0)" in value.replace(" ", ""):
        # "+44 (0) 20 7946 0018": the bracketed trunk 0 is dialled only nationally. Which
        # digits it sits between is a formatting guess, so the value is left as given.
        return value
    compact = value.translate(_NUMBER_PUNCTUATION)
    digits = compact[1:] if compact.startswith("+") else compact
    if not (digits.isascii() and digits.isdigit()):
        return value
    if compact.startswith("+"):
        return compact
    if digits.startswith("0") or not 7 <= len(digits) <= 15:
        return value
    return "+" + digits


# --------------------------------------------------------------------------- converters

_INT = re.compile(r"[+-]?[0-9]+(?:\.0*)?")


def _int(value: str) -> int | None:
    value = value.strip()
    if len(value) > 30 or not _INT.fullmatch(value):
        return None
    return int(value.split(".", 1)[0])


def _float(value: str) -> float | None:
    # float() takes Python's digit separators ("0_5" is 5.0): no platform writes them.
    value = value.strip()
    try:
        number = float(value) if value.isascii() and "_" not in value else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None


_DECIMAL_EXPONENT = 30


def _decimal(value: str) -> Decimal | None:
    try:
        value = value.strip()  # and no digit separators, as for floats
        number = Decimal(value) if value.isascii() and "_" not in value else None
    except (InvalidOperation, ValueError):
        return None
    if number is None or not number.is_finite():
        return None
    # "1e999999999" is a finite Decimal, but int() of it or f"{cost:.2f}" in a handler
    # would build a billion digits. No rate or cost is that large or that small.
    return number if -_DECIMAL_EXPONENT <= number.adjusted() <= _DECIMAL_EXPONENT else None


def _bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return None


def _text(value: str) -> str:
    return value


def _enum(kind: type[Enum]) -> Callable[[str], Any]:
    members: dict[str, Any] = {str(m.value): m for m in kind}

    def convert(value: str) -> Any:
        return members.get(value, value)

    return convert


# (attribute, parameter names in order of preference, converter). Where Vobiz spells a field
# two ways (RecordUrl/RecordFile, STIRVerification/stir_verification) both are listed.
_FIELDS: tuple[tuple[str, tuple[str, ...], Callable[[str], Any]], ...] = (
    ("direction", ("Direction",), _text),
    ("status", ("CallStatus",), _enum(CallStatus)),
    ("caller_name", ("CallerName",), _text),
    ("forwarded_from", ("ForwardedFrom",), normalise_number),
    ("a_leg_uuid", ("ALegUUID",), _text),
    ("a_leg_request_uuid", ("ALegRequestUUID",), _text),
    ("request_uuid", ("RequestUUID",), _text),
    ("session_start", ("SessionStart",), _text),
    ("stir_attestation", ("STIRAttestation",), _text),
    ("stir_verification", ("STIRVerification", "stir_verification"), _text),
    ("parent_auth_id", ("ParentAuthID",), _text),
    ("auth_id", ("auth_id",), _text),
    ("timestamp", ("Timestamp", "timestamp"), _text),
    ("bill_rate", ("BillRate",), _decimal),
    ("total_cost", ("TotalCost",), _decimal),
    ("country_code", ("CountryCode",), _text),
    ("route_type", ("RouteType",), _text),
    ("hangup_cause", ("HangupCause",), _text),
    ("hangup_cause_code", ("HangupCauseCode",), _int),
    ("hangup_cause_name", ("HangupCauseName",), _text),
    ("hangup_source", ("HangupSource",), _text),
    ("duration", ("Duration",), _int),
    ("bill_duration", ("BillDuration",), _int),
    ("start_time", ("StartTime",), _text),
    ("answer_time", ("AnswerTime",), _text),
    ("end_time", ("EndTime",), _text),
    ("input_type", ("InputType",), _text),
    ("digits", ("Digits",), _text),
    ("speech", ("Speech",), _text),
    ("speech_confidence", ("SpeechConfidenceScore",), _float),
    ("billed_amount", ("BilledAmount",), _decimal),
    ("stable_speech", ("StableSpeech",), _text),
    ("unstable_speech", ("UnstableSpeech",), _text),
    ("stability", ("Stability",), _float),
    ("sequence_number", ("SequenceNumber",), _int),
    ("dial_status", ("DialStatus",), _enum(DialStatus)),
    ("dial_ring_status", ("DialRingStatus",), _bool),
    ("dial_hangup_cause", ("DialHangupCause",), _text),
    ("dial_a_leg_uuid", ("DialALegUUID",), _text),
    ("dial_b_leg_uuid", ("DialBLegUUID",), _text),
    ("dial_b_leg_status", ("DialBLegStatus",), _text),
    ("dial_b_leg_from", ("DialBLegFrom",), normalise_number),
    ("dial_b_leg_to", ("DialBLegTo",), normalise_number),
    ("dial_b_leg_position", ("DialBLegPosition",), _int),
    ("dial_b_leg_duration", ("DialBLegDuration",), _int),
    ("dial_b_leg_bill_duration", ("DialBLegBillDuration",), _int),
    ("dial_b_leg_hangup_cause", ("DialBLegHangupCause",), _text),
    ("dial_b_leg_hangup_cause_code", ("DialBLegHangupCauseCode",), _int),
    ("dial_b_leg_hangup_cause_name", ("DialBLegHangupCauseName",), _text),
    ("dial_b_leg_hangup_source", ("DialBLegHangupSource",), _text),
    ("dial_action", ("DialAction",), _text),
    ("dial_digits_match", ("DialDigitsMatch",), _text),
    ("dial_digits_pressed_by", ("DialDigitsPressedBy",), _text),
    ("recording_id", ("RecordingID", "recording_id"), _text),
    ("record_url", ("RecordUrl", "RecordFile"), _text),
    ("recording_duration", ("RecordingDuration",), _int),
    ("recording_duration_ms", ("RecordingDurationMs",), _int),
    ("recording_start_ms", ("RecordingStartMs",), _int),
    ("recording_end_ms", ("RecordingEndMs",), _int),
    ("recording_end_reason", ("RecordingEndReason",), _text),
    ("transcription", ("transcription",), _text),
    ("transcription_id", ("transcription_id",), _text),
    ("transcription_url", ("transcription_url",), _text),
    ("conference_uuid", ("ConferenceUUID",), _text),
    ("conference_name", ("ConferenceName",), _text),
    ("conference_member_id", ("ConferenceMemberID",), _text),
    ("conference_action", ("ConferenceAction",), _text),
    ("conference_first_member", ("ConferenceFirstMember",), _bool),
    ("conference_last_member", ("ConferenceLastMember",), _bool),
    ("stream_id", ("StreamID",), _text),
    ("service_url", ("ServiceURL",), _text),
    ("checkpoint_name", ("Name",), _text),
    ("status_callback_url", ("status_callback_url",), _text),  # Stream callbacks (§2.10)
    ("status_callback_method", ("status_callback_method",), _text),
    ("error", ("Error",), _text),
    ("machine", ("Machine",), _bool),
)

_SIP_PREFIXES = ("x-vh-", "x-ph-")

#: The names of Vobiz's own fields: a GET callback appends them to our route's query string.
VOBIZ_FIELD_NAMES = frozenset(
    ("CallUUID", "Event", "From", "To", *(name for _a, names, _c in _FIELDS for name in names))
)


def _own_query(query: ParamsLike, method: str) -> Mapping[str, str]:
    """Our route's own query parameters. On a GET callback Vobiz's fields share the query
    string (spec §2.0); they are left out, so ``dict(call.query)`` passed on to ``url_for``
    or a transfer carries no stale CallUUID or Digits into the next URL."""
    own = collect(query)[0]
    if method.upper() == "GET":
        own = {
            k: v
            for k, v in own.items()
            if k not in VOBIZ_FIELD_NAMES and k[:5].lower() not in _SIP_PREFIXES
        }
    return MappingProxyType(own) if own else _NO_PARAMS


_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


def check_own_names(params: Mapping[str, Any]) -> None:
    """Raise QueryParamError for a parameter of one of our routes' URLs that a GET callback
    would mix up with a field of Vobiz's: any name Vobiz sends (spec §2), or a SIP header's.

    On GET, Vobiz appends its fields to the URL's query string (spec §2.0): ours by the same
    name would come first and be read as Vobiz's (a ``Digits`` of ours taken for the
    caller's key), and :attr:`CallRequest.query` leaves every such name out.
    """
    for name in params:
        if not isinstance(name, str):
            continue  # _query_item names the problem
        header = name[:5].lower() in _SIP_PREFIXES
        if name in VOBIZ_FIELD_NAMES or header:
            other = (name[5:] or "header") if header else name.lower()
            if other in VOBIZ_FIELD_NAMES:  # "Timestamp": "timestamp" is Vobiz's too
                other = f"my_{other}"
            raise QueryParamError(
                f"query parameter {name!r} has the name of a field Vobiz sends (spec §2); on "
                f"a GET callback the two would share the query string and yours be taken for "
                f"Vobiz's or lost: name yours otherwise (say {other!r})"
            )


def _sip_headers(params: Mapping[str, str]) -> Mapping[str, str]:
    found = {k: v for k, v in params.items() if k[:5].lower() in _SIP_PREFIXES}
    return MappingProxyType(found) if found else _NO_PARAMS


# --------------------------------------------------------------------------- the request


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", CallState(MemoryStore(), self.call_uuid))

    @classmethod
    def from_params(
        cls,
        params: ParamsLike,
        *,
        method: str = "POST",
        query: ParamsLike | None = None,
        path: str = "/",
        state: CallState | None = None,
    ) -> CallRequest:
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
        event = raw.get("Event", "")
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
            state = CallState(MemoryStore(), self.call_uuid)
            object.__setattr__(self, "state", state)
            return state

    def _attach_state(self, state: CallState) -> None:
        """Bind ``state`` to this request in place (the flow's dispatcher does, once)."""
        object.__setattr__(self, "state", state)

    def with_state(self, state: CallState) -> CallRequest:
        """A copy of this request carrying ``state``."""
        copy = dataclasses.replace(self)
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
