"""The application benchmarks/load.py drives under gunicorn: an IVR menu that counts visits.

Every webhook bumps a per-call counter with ``call.state.incr`` (atomic across workers)
and answers a Gather document that names the new count, so the load generator can check
each answer and, after the run, compare the stored counters with the answers it got.

Configured from the environment: ``VOBIZ_AUTH_TOKEN``, ``ANSWERKIT_STATE_URL`` and
``ANSWERKIT_PUBLIC_URL`` (default ``https://voice.example.com``: the requests reach
gunicorn on loopback but are signed for the public URL, as behind a TLS proxy).
"""

from __future__ import annotations

import os

from answerkit import CallFlow, CallRequest, Event, Gather, Redirect, Response, Speak

flow = CallFlow(
    "load",
    public_url=os.environ.get("ANSWERKIT_PUBLIC_URL", "https://voice.example.com"),
    deadline=8.0,
)


@flow.route("/ivr")
def ivr(call: CallRequest) -> Response:
    visit = call.state.incr("visits")
    return Response(
        Gather(
            Speak(f"Visit {visit}. For sales press 1. For support press 2."),
            action=flow.url_for("ivr", visit=visit),
            input_type="dtmf",
            num_digits=1,
        ),
        Redirect(flow.url_for("ivr", retry=1)),
    )


@flow.route("/ivr", event=Event.Hangup)
def hung_up(call: CallRequest) -> None:
    return None


app = flow.create_app()
