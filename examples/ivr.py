"""An IVR menu: press 1 or say "sales", press 2 or say "support", 0 for the operator.

Run it:  VOBIZ_AUTH_TOKEN=... ANSWERKIT_PUBLIC_URL=https://your.host answerkit run examples/ivr.py
Try it:  answerkit call examples/ivr.py --digits 2
Point your Vobiz Application's answer URL at  https://your.host/main
"""

from __future__ import annotations

import logging

from answerkit import (
    CallFlow,
    CallRequest,
    Dial,
    DialStatus,
    Event,
    Hangup,
    Number,
    Record,
    Response,
    Speak,
    User,
)
from answerkit.recipes import IVRMenu, Option

log = logging.getLogger(__name__)
# The application configures logging (a library never does): served by gunicorn, nothing
# else would, and the voicemail lines below (INFO) and answerkit's warnings would be lost
# or printed bare. A no-op where logging is set up already (pytest; the answerkit command
# sets up its own only after importing this, and only if this set up none).
logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
)
flow = CallFlow("ivr")

IVRMenu(
    flow,
    "main",
    prompt="Welcome to Example Corp. For sales, press 1 or say sales. "
    "For support, press 2 or say support. For the operator, press 0.",
    options={
        "1": Option("sales", phrases=("sales", "buy")),
        "2": Option("support", phrases=("support", "help")),
        "0": "operator",
    },
    retries=2,
    fallback="voicemail",
)


@flow.route("/sales")
def sales(call: CallRequest) -> Response:
    return Response(
        Speak("Connecting you to sales."),
        Dial(Number("+14155550101"), Number("+14155550102"), caller_id="+14155550100",
             timeout=25, action=flow.url_for("dialed", team="Sales")),
    )  # fmt: skip


@flow.route("/support")
def support(call: CallRequest) -> Response:
    return Response(
        Speak("Connecting you to support."),
        Dial(User("sip:support@example.sip.vobiz.ai"), caller_id="+14155550100", timeout=25,
             action=flow.url_for("dialed", team="Support")),
    )  # fmt: skip


@flow.route("/dialed")
def dialed(call: CallRequest) -> Response:
    # The Dial's action: elements after a Dial would also run after a completed call (the
    # agent hung up first), so the busy message goes only where the dial did not connect.
    if call.dial_status == DialStatus.COMPLETED:
        return Response(Hangup())
    return Response(Speak(f"{call.query.get('team', 'The team')} is busy right now."), Hangup())


@flow.route("/operator")
def operator(call: CallRequest) -> Response:
    return Response(Dial(Number("+14155550110"), caller_id="+14155550100", timeout=30), Hangup())


@flow.route("/voicemail")
def voicemail(call: CallRequest) -> Response:
    return Response(
        Speak("Please leave a message after the beep."),
        Record(
            action=flow.url_for("recorded"),
            callback_url=flow.url_for("message_saved"),
            max_length=120,
            finish_on_key="#",
        ),
        # With redirect false (the default) this runs after every recording, empty or not.
        Speak("Thank you for calling. Goodbye."),
        Hangup(),
    )


@flow.route("/recorded")
def recorded(call: CallRequest) -> Response:
    # Record's redirect is false by default: answer its action with an empty document.
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
