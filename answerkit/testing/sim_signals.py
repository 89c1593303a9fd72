"""What a simulated call is made of, and the signals between a call and its program.

:class:`CallSetup` is everything a call starts with (built by
:class:`~answerkit.testing.CallSimulator`). A call's program yields :data:`STEP` or
:data:`BLOCK` and raises :class:`CallEnded` or :class:`Interrupted`; it hands off to
the next document with a :class:`Fetch`. A transfer or hang-up waits on the call as
a :class:`Pending`. These sit apart from the elements so that every part of the
simulator can share them without importing the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from answerkit.elements import Element
from answerkit.testing.sim_transcript import Cause

__all__ = [
    "BLOCK",
    "STEP",
    "CallEnded",
    "CallSetup",
    "Fetch",
    "GatherPrompt",
    "Interrupted",
    "Pending",
    "Recording",
]

#: What a call's program yields: it took a step, or it waits on something outside it.
STEP = 0
BLOCK = 1


class CallEnded(Exception):
    """Raised inside a program to end the call with ``cause``."""

    def __init__(self, cause: Cause, note: str | None = None) -> None:
        super().__init__(cause.name)
        self.cause = cause
        self.note = note


class Interrupted(Exception):
    """Raised inside a program when a queued transfer or hang-up must be taken now."""


@dataclass
class Fetch:
    """A request whose XML becomes the call's next document (a hand-off)."""

    url: str
    method: str
    event: str | None
    params: dict[str, str]
    kind: str  # "answer" | "action" | "transfer" | "redirect": picks the 7xxx/8xxx cause


@dataclass(frozen=True)
class GatherPrompt:
    """What a Gather asks for, handed to an input provider (``answerkit call``)."""

    input_types: tuple[str, ...]
    num_digits: int
    finish_on_key: str
    prompts: tuple[str, ...]


@dataclass
class Recording:
    """A recording started by ``<Record>``; its RecordStop goes out after the hang-up.

    ``length`` and ``reason``: how long it lasts and why it stops, unless the call ends
    first (a ``recordSession`` recording always lasts until the hang-up).
    """

    recording_id: str
    element: Element
    start: float
    session: bool
    length: int = 0
    reason: str = "HungUp"


@dataclass
class Pending:
    """A transfer or hang-up waiting for the call's next step."""

    kind: str  # "transfer" | "transfer-bleg" | "hangup"
    url: str = ""
    method: str = "POST"
    cause: Cause | None = None


@dataclass
class CallSetup:
    """Everything a call is started with (built by :class:`CallSimulator`)."""

    call_uuid: str
    from_: str
    to: str
    direction: str
    answer_url: str | None
    answer_method: str = "POST"
    hangup_url: str | None = None
    hangup_method: str = "POST"
    fallback_url: str | None = None
    fallback_method: str | None = None  # None: the answer URL's method
    ring_url: str | None = None
    ring_method: str = "POST"
    caller_name: str | None = None
    request_uuid: str | None = None
    outcome: str = "answer"
    params: Mapping[str, str] = field(default_factory=dict)
    digits: list[str | None] = field(default_factory=list)
    speech: list[str | None] = field(default_factory=list)
    dial: list[Any] = field(default_factory=list)
    speech_confidence: float = 0.9
    max_steps: int = 200
    first_fetch: Fetch | None = None  # a B-leg starts from its transfer URL
    send_hangup: bool = True
    registered: bool = False  # LocalVobiz already knows the call (make-call)
