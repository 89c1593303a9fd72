"""The fixed vocabularies of a webhook's fields: :class:`Event`, :class:`CallStatus` and
:class:`DialStatus`.

Each is a ``str`` enum, so a member compares equal to the raw value Vobiz sends; a value
Vobiz adds later is kept as a plain ``str`` by the parser rather than refused.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CallStatus", "DialStatus", "Event"]


class _FieldValue(str, Enum):
    """A webhook field's value, printed as Vobiz sends it (``str(Event.Hangup)`` is
    "Hangup", not "Event.Hangup"), so it compares and formats as the raw field does."""

    def __str__(self) -> str:
        return str.__str__(self)  # the text itself: what Vobiz sent


class Event(_FieldValue):
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


class CallStatus(_FieldValue):
    """The ``CallStatus`` parameter (inbound answer requests arrive ``ringing``, spec §6.12)."""

    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    TIMEOUT = "timeout"
    NO_ANSWER = "no-answer"
    CANCEL = "cancel"


class DialStatus(_FieldValue):
    """The ``DialStatus`` of a Dial ``action`` request; handle every value."""

    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    CANCEL = "cancel"
    TIMEOUT = "timeout"
    NO_ANSWER = "no-answer"
