"""What the platform sends once a simulated call has ended.

First the hangup webhook (spec §2.2), to the hangup URL or else the answer URL; then,
for every ``<Record>`` with a ``callbackUrl``, its RecordStop (after the hang-up, spec
§2.13), and for every one with a ``transcriptionUrl``, its transcription (spec §2.6).
:meth:`SimulatedCall._finish` sends them, in that order, once the call is over.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from answerkit.testing.sim_signals import Recording
from answerkit.testing.sim_transcript import Cause

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["SIMULATED_TRANSCRIPTION", "send_hangup", "send_record_stops"]


def _local_time(start: datetime, seconds: float) -> str:
    # Vobiz reports StartTime/AnswerTime/EndTime in the account's local time (spec §2.2).
    return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def send_hangup(call: SimulatedCall, cause: Cause) -> None:
    """The hangup webhook (spec §2.2), to the hangup URL or else the answer URL."""
    url = call.setup.hangup_url or call.setup.answer_url
    if not url:
        return
    t = call.transcript
    answered = call.answered_at
    call._notify(
        url,
        call.setup.hangup_method,
        "Hangup",
        {
            "HangupCause": cause.cause,
            "HangupCauseCode": str(cause.code),
            "HangupCauseName": cause.name,
            "HangupSource": cause.source,
            "Duration": str(t.duration),
            "BillDuration": str(t.bill_duration),
            "StartTime": _local_time(call.started_at, 0),
            "AnswerTime": "" if answered is None else _local_time(call.started_at, answered),
            "EndTime": _local_time(call.started_at, call.clock),
            "BillRate": "0",
            "TotalCost": "0.00000",
        },
    )


#: What a simulated transcription says: no audio is recorded, so there is nothing to transcribe.
SIMULATED_TRANSCRIPTION = "simulated transcription"


def send_record_stops(call: SimulatedCall) -> None:
    """RecordStop for every recording with a callbackUrl (after the hangup, spec §2.13),
    then its transcription to ``transcriptionUrl`` (spec §2.6)."""
    started = [rec for rec in call.recordings if not rec.awaits_dial]
    for rec in call.recordings:
        if rec.awaits_dial:
            call._emit("note", "a startOnDialAnswer recording never started: no Dial was answered")
    for rec in started:
        callback = rec.element.get("callbackUrl")
        if callback:
            _record_stop(call, rec, callback)
    for rec in started:
        transcription_url = rec.element.get("transcriptionUrl")
        if transcription_url:
            _transcription(call, rec, transcription_url)


def _transcription(call: SimulatedCall, rec: Recording, url: str) -> None:
    # Spec §2.6 lists these four fields, snake_case unlike every other callback's, and no
    # other: no CallUUID, so a flow that needs the call must map it from the recording id.
    # The text is a fixed stand-in (SIMULATED_TRANSCRIPTION): nothing was really recorded.
    transcription_id = str(uuid.uuid4())
    fields = {
        "transcription": SIMULATED_TRANSCRIPTION,
        "transcription_id": transcription_id,
        "transcription_url": f"https://media.vobiz.ai/transcriptions/{transcription_id}",
        "recording_id": rec.recording_id,
    }
    standard = [name for name in call._params("", {}) if name not in fields]
    call._notify(url, rec.element.get("transcriptionMethod") or "POST", "", fields, standard)


def _record_stop(call: SimulatedCall, rec: Recording, callback: str) -> None:
    length, reason = rec.length, rec.reason
    if rec.session or call.clock < rec.start + length:
        # Recording the whole call, or cut short by a scheduled hang-up: it ends with the call.
        length, reason = max(1, round(call.clock - rec.start)), "HungUp"
    start_ms = int(rec.start * 1000)
    fmt = rec.element.get("fileFormat") or "mp3"
    url = f"https://media.vobiz.ai/recordings/{rec.recording_id}.{fmt}"
    call._notify(
        callback,
        rec.element.get("callbackMethod") or "POST",
        "RecordStop",
        {
            "RecordingID": rec.recording_id,
            "RecordUrl": url,
            "RecordFile": url,
            "RecordingDuration": str(length),
            "RecordingDurationMs": str(length * 1000),
            "RecordingStartMs": str(start_ms),
            "RecordingEndMs": str(start_ms + length * 1000),
            "RecordingEndReason": reason,
        },
    )
