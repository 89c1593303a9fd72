"""Call forwarding: ring the on-call phones one after another, then take a message.

Run it:  VOBIZ_AUTH_TOKEN=... ANSWERKIT_PUBLIC_URL=https://your.host \
         answerkit run examples/forwarding.py
Try it:  answerkit call examples/forwarding.py --dial busy,no-answer
Point your Vobiz Application's answer URL at  https://your.host/forward
"""

from __future__ import annotations

import logging

from answerkit import CallFlow, CallRequest, Event, Hangup, Record, Response, Speak
from answerkit.recipes import Forwarding

log = logging.getLogger(__name__)
# The application configures logging (a library never does): served by gunicorn, nothing
# else would, and the voicemail lines below (INFO) and answerkit's warnings would be lost
# or printed bare. A no-op where logging is set up already (pytest; the answerkit command
# sets up its own only after importing this, and only if this set up none).
logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
)
flow = CallFlow("forwarding")

Forwarding(
    flow,
    "forward",
    numbers=["+14155550121", "+14155550122", "sip:oncall@example.sip.vobiz.ai"],
    caller_id="+14155550100",
    mode="sequential",
    timeout=20,
    fallback="voicemail",
)


@flow.route("/voicemail")
def voicemail(call: CallRequest) -> Response:
    return Response(
        Speak("Nobody could take your call. Please leave a message after the beep."),
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
