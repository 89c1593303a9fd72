"""What a simulated call leaves behind: the transcript, its webhooks, and how it ended.

A :class:`Transcript` is what tests assert on. Everything in it is plain data: no auth
token, signature or header is ever stored, so printing one is always safe. Its text form
(``str(transcript)``) is deterministic (no UUIDs, no timings), so the same flow gives the
same text in-process and over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import parse_qsl, unquote

from answerkit.testing.sim_transport import normal_url

if TYPE_CHECKING:
    from answerkit.elements import Response

__all__ = [
    "CAUSES", "CallPhase", "Cause", "DialOutcome", "DialRecord", "EventKind", "Transcript",
    "TranscriptEvent", "Webhook",
]  # fmt: skip

#: What a :class:`TranscriptEvent` is about; a Literal, so that a type checker reports a
#: listener comparing ``event.kind`` with a kind that never comes (``"heard"``).
EventKind = Literal[
    "hear", "silence", "press", "say", "no-input", "webhook", "dial", "conference", "record",
    "dtmf", "stream", "transfer", "redirect", "note", "error", "hangup",
]  # fmt: skip

#: How a ``<Dial>`` of the call went (``Transcript.dials``): None while it rings; "cancel":
#: the caller hung up while it rang.
DialOutcome = Literal["answered", "no-answer", "timeout", "busy", "failed", "cancel"]

#: Where a simulated call is (``SimulatedCall.state``).
CallPhase = Literal["new", "running", "blocked", "ended"]


class DialRecord(TypedDict):
    """One ``<Dial>`` of the call, in ``Transcript.dials``."""

    numbers: list[str]  # every Number and User it rang, in order
    outcome: DialOutcome | None
    answered_by: str | None  # the address that answered, if one did


@dataclass(frozen=True)
class Cause:
    """Why a call (or a B-leg) ended, in the four fields Vobiz reports."""

    cause: str
    code: int
    name: str
    source: str

    def with_source(self, source: str) -> Cause:
        """The same cause, reported by another party."""
        return Cause(self.cause, self.code, self.name, source)


# Codes the spec documents (4000, 4010, 6010, 9000, 7011-7014, 8011-8014) are used as given;
# the busy/rejected/failed codes follow Plivo's table, which Vobiz inherits (spec tag PL).
CAUSES: dict[str, Cause] = {
    "normal": Cause("NORMAL_CLEARING", 4000, "Normal Hangup", "Answer XML"),
    "end_of_xml": Cause("NORMAL_CLEARING", 4010, "End Of XML Instructions", "Vobiz"),
    "busy": Cause("USER_BUSY", 3010, "Busy Line", "Callee"),
    "rejected": Cause("CALL_REJECTED", 3020, "Rejected", "Answer XML"),
    "failed": Cause("DESTINATION_OUT_OF_ORDER", 2010, "Destination Out Of Service", "Carrier"),
    "no-answer": Cause("NO_ANSWER", 6010, "Ring Timeout Reached", "Vobiz"),
    "timeout": Cause("NO_ANSWER", 6010, "Ring Timeout Reached", "Vobiz"),  # the same ring-out
    "lose_race": Cause("LOSE_RACE", 9000, "Lost Race", "Vobiz"),
    # A B-leg still ringing when the caller hangs up. The spec gives the Dial action's
    # DialStatus=cancel (§2.5) but no cause for it: ORIGINATOR_CANCEL is the switch's name
    # for it (Vobiz's cause names are the switch's: NO_ANSWER, LOSE_RACE), and 1000
    # "Canceled" the code of Plivo's cancel family (spec tag PL).
    "cancel": Cause("ORIGINATOR_CANCEL", 1000, "Canceled", "Caller"),
    "answer_url": Cause("ERROR_REACHING_ANSWER_URL", 7011, "Error Reaching Answer URL", "Error"),
    "action_url": Cause("ERROR_REACHING_ACTION_URL", 7012, "Error Reaching Action URL", "Error"),
    "transfer_url": Cause(
        "ERROR_REACHING_TRANSFER_URL", 7013, "Error Reaching Transfer URL", "Error"
    ),
    "redirect_url": Cause(
        "ERROR_REACHING_REDIRECT_URL", 7014, "Error Reaching Redirect URL", "Error"
    ),
    "answer_xml": Cause("INVALID_ANSWER_XML", 8011, "Invalid Answer XML", "Error"),
    "action_xml": Cause("INVALID_ACTION_XML", 8012, "Invalid Action XML", "Error"),
    "transfer_xml": Cause("INVALID_TRANSFER_XML", 8013, "Invalid Transfer XML", "Error"),
    "redirect_xml": Cause("INVALID_REDIRECT_XML", 8014, "Invalid Redirect XML", "Error"),
}

#: Hang-up causes that mean the flow did what it meant to (``answerkit call`` exits 0).
NORMAL_CODES = frozenset({4000, 4010})
#: The causes a flow's own ``<Hangup>`` gives when it declines the call (spec §1.2 Hangup:
#: first in the answer document, or ``reason="rejected"``/``"busy"``): on purpose, so
#: ``Transcript.ended_normally`` counts them as normal. Their source, "Answer XML", tells
#: them from a callee who is busy or rejects an outbound call. In the order (busy, rejected).
FLOW_REJECTIONS = (CAUSES["busy"].with_source("Answer XML"), CAUSES["rejected"])


@dataclass(frozen=True)
class Webhook:
    """One request the simulator sent, and the answer it got.

    ``url`` is the public URL Vobiz would have requested (query included), ``status`` the
    HTTP status (0 when the URL could not be reached, or is outside the simulated
    application and was not requested), ``elapsed`` the wall-clock seconds the request
    took, ``path`` the path the transcript prints (relative to the app's public URL,
    query included; None for a URL outside the app). Headers are not kept: they carry
    the signature.
    """

    url: str
    method: str
    params: Mapping[str, str]
    status: int
    body: bytes = field(repr=False)
    content_type: str
    elapsed: float = field(compare=False)
    error: str | None = None
    path: str | None = None

    @property
    def event(self) -> str:
        """The ``Event`` field sent ("" when the request had none, e.g. a Gather action)."""
        return self.params.get("Event", "")

    @property
    def text(self) -> str:
        """The answer body as text."""
        return self.body.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class TranscriptEvent:
    """One thing that happened on a call, in order.

    ``kind`` is one of ``hear``, ``silence``, ``press``, ``say``, ``no-input``, ``webhook``,
    ``dial``, ``conference``, ``record``, ``dtmf``, ``stream``, ``transfer``, ``redirect``,
    ``note``, ``error`` (a handler of the flow failed), ``hangup``; ``text`` is its
    readable line; ``at`` the simulated second of the call it happened at; ``data`` the
    details (``data["webhook"]`` for a webhook).
    """

    kind: EventKind
    text: str
    at: float
    data: Mapping[str, Any] = field(default_factory=dict)


class Transcript:
    """Everything one simulated call did, to assert on.

    Lists grow while the call runs: ``heard`` (spoken text, and the URL of each played
    file), ``digits_sent`` and ``speech_sent`` (the caller's input, one entry per Gather
    that got input), ``dtmf`` (tones the flow sent with ``<DTMF>``), ``dials`` (one dict
    per ``<Dial>``: ``numbers``, ``outcome``, ``answered_by``), ``conferences`` (rooms
    joined), ``recordings`` (recording ids), ``streams`` (stream URLs), ``transfers``
    (URLs the leg was moved to), ``webhooks``, ``events`` and ``handler_errors`` (``route:
    Type: message`` for each webhook whose handler failed and got the flow's fallback, or
    ``route: no handler for Event=…`` when the route had no handler for the webhook's
    event; seen when the simulator was given the flow), ``unhandled_callbacks`` (status
    callbacks other than Hangup that reached no handler on a route handling no status event
    by name, so that their fields, a recording's URL say, were lost; they do not count as
    errors).
    Once the call is over,
    ``ended`` is True and ``hangup_cause``, ``hangup_cause_code``, ``hangup_cause_name``,
    ``hangup_source``, ``duration`` and ``bill_duration`` say how.
    """

    def __init__(self, call_uuid: str, from_: str, to: str, direction: str) -> None:
        self.call_uuid = call_uuid
        self.from_ = from_
        self.to = to
        self.direction = direction
        self.heard: list[str] = []
        self.digits_sent: list[str] = []
        self.speech_sent: list[str] = []
        self.dtmf: list[str] = []
        self.dials: list[DialRecord] = []
        self.conferences: list[str] = []
        self.recordings: list[str] = []
        self.streams: list[str] = []
        self.transfers: list[str] = []
        self.webhooks: list[Webhook] = []
        self.events: list[TranscriptEvent] = []
        self.handler_errors: list[str] = []
        self.unhandled_callbacks: list[str] = []
        self.documents: list[Response] = []
        self.ended = False
        self.hangup_cause: str | None = None
        self.hangup_cause_code: int | None = None
        self.hangup_cause_name: str | None = None
        self.hangup_source: str | None = None
        self.duration = 0
        self.bill_duration = 0
        self.step_limit_reached = False

    # -- reading -------------------------------------------------------------------------

    @property
    def ended_normally(self) -> bool:
        """True when the call ended with 4000 or 4010, or with the cause of the flow's own
        ``<Hangup>`` rejecting it (3020 Rejected, or 3010 with ``reason="busy"``), no
        handler of the flow failed, and the step limit was not reached.

        A caller who hangs up (4000, source ``Caller``) counts as normal: that is no
        failure of the flow. A failed handler is answered with the flow's fallback (an
        apology and a hangup, 4000): the call "works" on Vobiz, but not as written, so it
        does not count here. Nor does a call the simulated caller hung up on after
        ``max_steps`` steps: a flow that never ends it (a Redirect loop, menus falling
        back to each other) would keep a silent caller for ever.
        """
        rejected = any(
            (self.hangup_cause_code, self.hangup_source) == (cause.code, cause.source)
            for cause in FLOW_REJECTIONS
        )
        return (
            self.ended
            and (self.hangup_cause_code in NORMAL_CODES or rejected)
            and not self.handler_errors
            and not self.step_limit_reached
        )

    def said(self, text: str) -> bool:
        """True when some spoken or played entry contains ``text``."""
        return any(text in heard for heard in self.heard)

    def webhooks_for(self, event: str | None = None, *, path: str | None = None) -> list[Webhook]:
        """The webhooks with this ``Event`` and/or whose URL path is ``path``.

        ``path`` is a path of the app: as the transcript prints it (relative to the app's
        public URL: ``/answer`` under ``https://voice.example.com/app``) or the URL's full
        path, either percent-encoded or not (``/menü`` finds ``/men%C3%BC``). A path with
        a query (``/menu?step=2``, as printed) matches that query too, field by field in
        any order of names (``y=%26`` is not ``y=&``); without one (or with an empty
        one, ``/menu?``), any. A ``#fragment`` is ignored on
        both sides, and a full URL matches in any spelling of its server (scheme and host
        in any case, with or without the default port), as the simulator routes it.
        A webhook sent outside the app (a callback to another host) is found only by its
        full URL (``path="https://analytics.example.net/cb"``): by its path alone it
        would pass for the app's route of that name.
        """
        found = []
        for hook in self.webhooks:
            if event is not None and hook.event != event:
                continue
            if path is not None and not _path_matches(hook, path):
                continue
            found.append(hook)
        return found

    def events_of(self, kind: str) -> list[TranscriptEvent]:
        """The events of one kind (``"hear"``, ``"webhook"``, ``"dial"`` ...)."""
        return [e for e in self.events if e.kind == kind]

    def lines(self) -> list[str]:
        """The readable lines, one per event."""
        return [e.text for e in self.events]

    def __iter__(self) -> Iterator[TranscriptEvent]:
        return iter(self.events)

    def __str__(self) -> str:
        return "\n".join(e.text for e in self.events)

    def __repr__(self) -> str:
        state = (
            f"ended {self.hangup_cause_code} {self.hangup_cause_name!r}"
            if self.ended
            else "in progress"
        )
        return f"<Transcript {self.direction} call, {len(self.events)} events, {state}>"


def _path_of(url: str, query: bool = False) -> str:
    """The path of ``url`` (with its query if ``query``)."""
    rest = url.split("://", 1)[-1].split("#", 1)[0]
    slash = rest.find("/")
    path = rest[slash:] if slash >= 0 else "/"
    return path if query else path.split("?", 1)[0]


def _path_matches(hook: Webhook, wanted: str) -> bool:
    """Whether ``webhooks_for(path=wanted)`` finds ``hook`` (see there), percent-decoded."""
    if "://" in wanted:
        # A full URL: compared with the URL the webhook went to, scheme and host in any case.
        return _same(_url_key(hook.url), _url_key(wanted))
    if hook.path is None:
        return False  # outside the app: its path is no path of the app's
    want = _split(wanted)
    return any(_same(_split(seen), want) for seen in (hook.path, _path_of(hook.url, True)))


Query = list[tuple[str, str]]


def _same(seen: tuple[str, Query | None], want: tuple[str, Query | None]) -> bool:
    """``seen`` (where, query) is ``want``; a query not asked for matches any."""
    return seen[0] == want[0] and (want[1] is None or seen[1] == want[1])


def _split(path: str) -> tuple[str, Query | None]:
    """A path's part before the query and its query's fields (None without a "?"),
    decoded; a fragment is dropped (it never reaches the server).

    The query is read field by field (``parse_qsl``), not decoded whole: ``y=%26`` is one
    field whose value is "&", ``y=&`` a field with no value. The fields are sorted by name
    (``?b=2&a=1`` is ``?a=1&b=2``; a name given twice keeps its values' order), and an
    empty query (``/next?``) is no query.
    """
    where, _, query = path.split("#", 1)[0].partition("?")
    fields = sorted(parse_qsl(query, keep_blank_values=True), key=lambda field: field[0])
    return unquote(where), fields or None


def _url_key(url: str) -> tuple[str, Query | None]:
    """``_split`` of a URL in the Router's one spelling of its server (scheme and host in
    lower case, no default port: see ``normal_url``), its fragment dropped."""
    url = normal_url(url.split("#", 1)[0])
    scheme, sep, rest = url.partition("://")
    slash = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    where, query = _split(rest[slash:])
    return f"{scheme}{sep}{rest[:slash]}{where or '/'}", query
