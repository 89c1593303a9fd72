"""Warm transfer: the caller holds with an announcement and music, the agent is briefed
(whisper) and accepts with a key, then caller and agent are joined in one room. If the
agent declines, is busy or does not answer, the caller is taken to voicemail.

Run it:  VOBIZ_AUTH_ID=... VOBIZ_AUTH_TOKEN=... ANSWERKIT_PUBLIC_URL=https://your.host \
         AGENT_NUMBER=+1... TRANSFER_TRIGGER_SECRET=... answerkit run examples/warm_transfer.py
(AGENT_NUMBER defaults to a placeholder, fine for `answerkit check`/`call` but never
answered on a live call; without TRANSFER_TRIGGER_SECRET no trigger endpoint is served.)
Point your Vobiz Application's answer URL at  https://your.host/answer
A CRM can start a transfer with  POST https://your.host/_answerkit/transfer
  Authorization: Bearer $TRANSFER_TRIGGER_SECRET   {"call_uuid": "...", "aleg": "voicemail"}
"""

from __future__ import annotations

import logging
import os

from answerkit import CallFlow, CallRequest, Event, Gather, Hangup, Record, Response, Speak, Wait
from answerkit.recipes import TransferTrigger, WarmTransfer

log = logging.getLogger(__name__)
# The application configures logging (a library never does): served by gunicorn, nothing
# else would, and the voicemail lines below (INFO) and answerkit's warnings would be lost
# or printed bare. A no-op where logging is set up already (pytest; the answerkit command
# sets up its own only after importing this, and only if this set up none).
logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
)
flow = CallFlow("warm")

transfer = WarmTransfer(
    flow,
    "warm",
    agent=os.environ.get("AGENT_NUMBER", "+14155550142"),
    caller_id="+14155550100",
    announcement="Please hold while we transfer your call.",
    whisper=None,  # the default whisper reads the context and asks for the accept key
    accept_key="1",
    agent_timeout=25,
    fallback="voicemail",
)
trigger = TransferTrigger(flow, secret=os.environ.get("TRANSFER_TRIGGER_SECRET"))


@flow.route("/answer")
def answer(call: CallRequest) -> Response:
    return Response(
        Gather(
            Speak("Thanks for calling. Press 1 to speak with an agent."),
            action=flow.url_for("choice"),
            input_type="dtmf",
            num_digits=1,
        ),
        Speak("Goodbye."),
        Hangup(),
    )


@flow.route("/choice")
def choice(call: CallRequest) -> Response:
    if call.digits != "1":
        return Response(Speak("Goodbye."), Hangup())
    transfer.start(call.call_uuid, context={"caller": call.from_, "topic": "support"})
    # The Transfer API moves the caller to the hold route at once; this only plays if
    # the transfer is slow to arrive.
    return Response(Speak("One moment please."), Wait(length=5))


@flow.route("/voicemail")
def voicemail(call: CallRequest) -> Response:
    return Response(
        Speak("All our agents are busy. Please leave a message after the beep."),
        Record(
            action=flow.url_for("recorded"),
            callback_url=flow.url_for("message_saved"),
            max_length=120,
        ),
        Hangup(),
    )


@flow.route("/recorded")
def recorded(call: CallRequest) -> Response:
    return Response()


@flow.route("/message-saved", status_callback=True)
def message_saved(call: CallRequest) -> None:
    # RecordStop, once the recording ends: the file and its length arrive here, not at the
    # action, which Vobiz calls as the recording starts (spec §2.6). A status-callback route
    # takes every event sent to it (the call's Hangup too): only RecordStop carries a file.
    if call.event != Event.RecordStop:
        return
    log.info("message from %s: %s (%s s)", call.from_, call.record_url, call.recording_duration)


app = flow.create_app()
