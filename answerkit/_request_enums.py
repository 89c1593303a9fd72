"""The fixed vocabularies of a webhook's fields: :class:`Event`, :class:`CallStatus` and
:class:`DialStatus`.

Each is a ``str`` enum, so a member compares equal to the raw value Vobiz sends; a value
Vobiz adds later is kept as a plain ``str`` by the parser rather than refused.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["CallStatus", "DialStatus", "Event"]


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
