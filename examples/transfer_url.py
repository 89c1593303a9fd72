"""The transfer URL of the vendor's "Transfer a Call" page, hosted by answerkit.

A live leg moved here with the Transfer API hears the hold line and is dialled onward (the
document as the vendor's page writes it; in your own, give the Dial a timeout, as
`answerkit check` advises: the B-leg rings for about 120 s otherwise):

    <Response>
      <Speak>Please hold while we transfer your call.</Speak>
      <Dial callerId="+14155551234"><Number>+14156667890</Number></Dial>
    </Response>

Run it:  VOBIZ_AUTH_TOKEN=... ANSWERKIT_PUBLIC_URL=https://your.host \
         answerkit run examples/transfer_url.py
Move a call onto it from Python (VOBIZ_AUTH_ID / VOBIZ_AUTH_TOKEN set):

    from transfer_url import flow
    flow.try_transfer(call_uuid, aleg="transfer_instructions")   # None if the call ended
"""

from __future__ import annotations

import logging

from answerkit import CallFlow, CallRequest, Dial, Number, Response, Speak

# The application configures logging (a library never does): served by gunicorn, nothing
# else would, and answerkit's warnings would be printed bare.
logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
)

flow = CallFlow("transfer")


@flow.route("/transfer_instructions/")
def transfer_instructions(call: CallRequest) -> Response:
    return Response(
        Speak("Please hold while we transfer your call."),
        Dial(Number("+14156667890"), caller_id="+14155551234"),
    )


app = flow.create_app()
