"""What a simulated call is made of, and the signals between a call and its program.

:class:`CallSetup` is everything a call starts with (built by
:class:`~answerkit.testing.CallSimulator`). A call's program yields :data:`STEP` or
:data:`BLOCK` and raises :class:`CallEnded` or :class:`Interrupted`; it hands off to
the next document with a :class:`Fetch`. A transfer or hang-up waits on the call as
a :class:`Pending`. Conference rooms (:class:`ConferenceRoom`) are shared by the calls
of one simulator. These sit apart from the elements so that every part of the
simulator can share them without importing the others.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from answerkit.elements import Element
from answerkit.testing.sim_transcript import Cause, Webhook

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = [
    "BLOCK",
    "STEP",
    "CallEnded",
    "CallSetup",
    "ConferenceRoom",
    "Fetch",
    "GatherPrompt",
    "Interrupted",
    "Member",
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
    """A request whose XML becomes the call's next document (a hand-off).

    ``reply``: the request went out already (a Record's action, sent as the recording
    starts, spec §2.6) and this is its answer, whose XML runs once the element is done.
    """

    url: str
    method: str
    event: str | None
    params: dict[str, str]
    kind: str  # "answer" | "action" | "transfer" | "redirect": picks the 7xxx/8xxx cause
    reply: Webhook | None = None


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
    #: ``startOnDialAnswer``: not started until a Dial's B-leg answers (then it runs on,
    #: as a ``recordSession`` does); one no Dial answered never records at all.
    awaits_dial: bool = False


@dataclass
class Pending:
    """A transfer or hang-up waiting for the call's next step."""

    kind: str  # "transfer" | "transfer-bleg" | "hangup"
    url: str = ""
    method: str = "POST"
    cause: Cause | None = None
    #: For "transfer-bleg": the CallUUID of the B-leg it was asked for (None: the call had
    #: none then). Only that leg moves: a request the Dial could not act on is dropped when
    #: the Dial ends, never applied to a later Dial's B-leg (another call).
    bleg: str | None = None
    #: A hang-up of the caller's own (SimulatedCall.hangup, from a listener, say): it ends
    #: the call before any other call steps. REST requests keep the order they came in.
    by_caller: bool = False


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
    record: list[str] = field(default_factory=list)
    speech_confidence: float = 0.9
    max_steps: int = 200
    first_fetch: Fetch | None = None  # a B-leg starts from its transfer URL
    send_hangup: bool = True
    registered: bool = False  # LocalVobiz already knows the call (make-call)


# -- conference rooms (shared by the calls of one simulator) ------------------------------


@dataclass
class Member:
    """One call in a conference room."""

    call: SimulatedCall
    member_id: str
    stay_alone: bool
    starter: bool
    end_on_exit: bool
    muted: bool
    active: bool = True
    reason: str = ""
    kicked: bool = False


@dataclass
class ConferenceRoom:
    """A named room shared by every call of one simulator (``sim.conference(name)``)."""

    name: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: bool = False
    history: list[str] = field(default_factory=list)
    _members: list[Member] = field(default_factory=list)
    _next_id: int = 1

    @property
    def members(self) -> list[SimulatedCall]:
        """The calls in the room now, in the order they joined."""
        return [m.call for m in self._members if m.active]

    def join(self, call: SimulatedCall, el: Element) -> Member:
        """Add ``call``; returns its membership."""
        if not self._members:
            self.uuid = str(uuid.uuid4())
            self.started = False
        member = Member(
            call,
            str(self._next_id),
            stay_alone=el.get("stayAlone") == "true",
            starter=el.get("startConferenceOnEnter") != "false",
            end_on_exit=el.get("endConferenceOnExit") == "true",
            muted=el.get("muted") == "true",
        )
        self._next_id += 1
        self._members.append(member)
        if member.starter:
            self.started = True
        self.history.append(f"{call.call_uuid} joined")
        self._settle()
        return member

    def leave(self, member: Member) -> bool:
        """Take ``member`` out; ``endConferenceOnExit`` ends the conference for everyone.
        Whether it was the last to leave: members the ending let go are still in the room
        until each of them leaves (spec §2.9: ``ConferenceLastMember``, the room now empty)."""
        if member in self._members:
            self._members.remove(member)
        member.active = False
        self.history.append(f"{member.call.call_uuid} left")
        if member.end_on_exit:
            for other in self._members:
                if other.active:
                    other.active, other.kicked = False, True
                    other.reason = "the conference ended"
        if not any(m.active for m in self._members):
            self.started = False
        self._settle()
        return not self._members

    def _settle(self) -> None:
        # stayAlone defaults to false on Vobiz: a member alone in a started room is let go.
        active = [m for m in self._members if m.active]
        if self.started and len(active) == 1 and not active[0].stay_alone:
            active[0].active = False
            active[0].reason = "alone in the conference"
