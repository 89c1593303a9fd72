"""Test helpers: the call simulator, the local Vobiz API server, signed-request helpers.

Nothing here needs pytest; the fixtures live in :mod:`answerkit.testing.pytest_plugin`.
"""

from __future__ import annotations

from answerkit.testing.local_vobiz import (
    LiveCallRecord,
    LocalVobiz,
    ReceivedRequest,
    SentWebhook,
    TransferOutcome,
)
from answerkit.testing.sim_bridge import ConferenceRoom
from answerkit.testing.sim_call import SimulatedCall
from answerkit.testing.sim_signals import GatherPrompt
from answerkit.testing.sim_transcript import (
    CAUSES,
    CallPhase,
    Cause,
    DialOutcome,
    DialRecord,
    EventKind,
    Transcript,
    TranscriptEvent,
    Webhook,
)
from answerkit.testing.simulator import (
    CallSimulator,
    CallSimulatorFactory,
    SignedPost,
    SignRequest,
    sign_request,
    signed_post,
)

__all__ = [
    "CAUSES",
    "CallPhase",
    "CallSimulator",
    "CallSimulatorFactory",
    "Cause",
    "ConferenceRoom",
    "DialOutcome",
    "DialRecord",
    "EventKind",
    "GatherPrompt",
    "LiveCallRecord",
    "LocalVobiz",
    "ReceivedRequest",
    "SentWebhook",
    "SignRequest",
    "SignedPost",
    "SimulatedCall",
    "Transcript",
    "TranscriptEvent",
    "TransferOutcome",
    "Webhook",
    "sign_request",
    "signed_post",
]
