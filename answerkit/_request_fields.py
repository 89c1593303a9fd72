"""How each raw webhook parameter becomes a typed value: :func:`normalise_number`, the
converters, and the table (``_FIELDS``) of every field Vobiz sends (spec §2).

A converter never raises: a value it cannot read is ``None`` (the raw one stays in the
request's ``params``). :class:`~answerkit.request.CallRequest` runs them lazily, on first
read of each attribute.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from answerkit._request_enums import CallStatus, DialStatus

__all__ = ["normalise_number"]


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
        return members.get(value.strip(), value)

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
