"""The VobizXML vocabulary: one class per tag (spec §1).

::

    doc = Response(
        Speak("Please hold while we transfer your call."),
        Dial(Number("+14156667890"), caller_id="+14155551234"),
    )
    doc.to_xml()

Attributes are keyword-only, in snake_case, and render in the spec's camelCase and table
order (``num_digits`` -> ``numDigits``, ``async_`` -> ``async``). Values are checked when an
element is built: a bad one raises :class:`~answerkit.errors.ElementError` naming the element,
the attribute, the value and what is allowed. Document rules (what may follow a Hangup, a Dial
with nothing to dial...) are checked by :meth:`Response.validate`, which ``to_xml`` calls.

Rendering is plain string building, done as each element is built (leaf elements are
immutable), so a document renders by joining its children's strings; see ``_element`` for
how, and the benchmark in ``benchmarks/``. Speak lives in ``_speak``; Dial, Number, User,
Record, Conference and Stream in ``_calls``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

from answerkit import _tables as _t
from answerkit._calls import Conference, Dial, Number, Record, Stream, User
from answerkit._element import (
    _DECL,
    MAX_BYTES,
    RULE_CHECK,
    RULE_FIRST,
    RULE_LAST,
    RULE_NONE,
    Element,
    _Container,
    _TextElement,
)
from answerkit._speak import Speak
from answerkit._tables import TEXTS, TagMemo
from answerkit._tables import not_vobiz as not_vobiz_error
from answerkit._xmltext import xml_blank
from answerkit.errors import ElementError

if TYPE_CHECKING:
    from answerkit.lint import LintWarning

# What each container's add() takes, as its constructor does (a type checker flags the rest).
_ResponseChildT = TypeVar("_ResponseChildT", bound="ResponseChild")
_GatherChildT = TypeVar("_GatherChildT", bound="Speak | Play")
_PreAnswerChildT = TypeVar("_PreAnswerChildT", bound="Speak | Play | Wait")

__all__ = [
    "DTMF", "Conference", "Dial", "Element", "Gather", "Hangup", "Number", "Play", "PreAnswer",
    "Record", "Redirect", "Response", "ResponseChild", "Speak", "Stream", "User", "Wait",
]  # fmt: skip

# Each attribute's bound checker by Python name (see Table.frag); the text checkers likewise.
_WAIT = _t.WAIT.frag
_GATHER_FULL = TagMemo(_t.GATHER, *_t.GATHER)
_GATHER_SHORT = TagMemo(
    _t.GATHER,
    "action", "method", "input_type", "execution_timeout", "finish_on_key", "num_digits",
    "language",
)  # fmt: skip
_PLAY = TEXTS["Play"]
_REDIRECT = TEXTS["Redirect"]
_DTMF = TEXTS["DTMF"]

_OPEN = _DECL + "<Response>"
_EMPTY = _DECL + "<Response/>"
#: A document this long in characters may be over MAX_BYTES once encoded (4 bytes a char).
_MAY_BE_TOO_BIG = MAX_BYTES // 4


class Response(_Container["ResponseChild"]):
    """The document root: exactly one, no attributes; its children run top to bottom."""

    __slots__ = ("_ruled",)
    tag = "Response"
    #: How many children had a rule code (``_r``) when added. A code only ever drops to
    #: RULE_NONE later (a Dial given a Number), so the count can only overstate, which sends
    #: the document to the full check: never a broken one through.
    _ruled: int

    def __init__(self, *children: ResponseChild) -> None:
        # No _open or _x: a Response has no attributes and never caches its XML, since a
        # nested Gather or Dial may still gain children. The type check reads each child's
        # class, which also tells whether it has a rule code at all: a Speak's is not read.
        ruled = 0
        for c in children:
            try:
                kind = _KIND[type(c)]
            except KeyError:
                self._take(children)  # subclasses pass there; anything else raises
                self._ruled = _count_ruled(self._children)
                return
            if kind and c._r:
                ruled += 1
        self._children = [*children]
        self._ruled = ruled

    @classmethod
    def _assembled(cls, kids: list[Element]) -> Response:
        """The parsers' path: ``kids`` are checked children, allowed in a Response."""
        doc = cls.__new__(cls)
        doc._children = kids  # type: ignore[assignment]  # checked by the parser
        doc._ruled = _count_ruled(kids)
        return doc

    def add(self, child: _ResponseChildT) -> _ResponseChildT:
        """Append ``child`` and return it (so ``with doc.add(Gather(...)) as g:`` nests)."""
        self._append(child)
        if child._r:
            self._ruled += 1
        return child

    @classmethod
    def _parsed(
        cls, attrs: dict[str, str], start: str, text: str | None, kids: Sequence[object]
    ) -> Element:
        if attrs or (text and not xml_blank(text)):
            raise ElementError("Response: takes no attributes or text", element="Response")
        return cls(*kids)  # type: ignore[arg-type]

    def _problem(self) -> tuple[tuple[int, ...], ElementError] | None:
        """The first broken rule: the path to the element (child indexes from Response) and
        the error. Direct children carry document rules, and so do the children of PreAnswer
        (a Wait's own rule); everything else was checked when built."""
        ch = self._children
        last = len(ch) - 1
        for i, c in enumerate(ch):
            msg = c._rule(i, last)
            if msg is not None:
                where = f"{c.tag} (child {i + 1} of {last + 1} in Response)"
                return (i,), ElementError(f"{where}: {msg}", element=c.tag, value=c)
            if c._r == RULE_FIRST and isinstance(c, PreAnswer):
                kids = c._children
                for j, k in enumerate(kids):
                    msg = k._rule(j, len(kids) - 1) if k._r else None
                    if msg is not None:
                        where = (
                            f"{k.tag} (child {j + 1} of {len(kids)} in PreAnswer, "
                            f"child {i + 1} of {last + 1} in Response)"
                        )
                        return (i, j), ElementError(f"{where}: {msg}", element=k.tag, value=k)
        return None

    def validate(self) -> None:
        """Raise :class:`ElementError` if a document rule (spec §1.0, §1.2) is broken."""
        problem = self._problem()
        if problem is not None:
            raise problem[1]

    def lint(self) -> list[LintWarning]:
        """Advice that is not an error: defaults that surprise, unreliable features."""
        from answerkit.lint import lint

        return lint(self)

    def to_xml(self, pretty: bool = False) -> str:
        """The document as text, with the XML declaration; validates first.

        Compact by default. ``pretty=True`` indents by two spaces; an element with text or
        SSML stays on one line, so no text node changes.
        """
        ch = self._children
        if pretty:
            self.validate()
            out = [_DECL]
            self._pretty(out, 0)
            s = "\n".join(out)
        elif ch:
            parts = [_OPEN]
            for c in ch:
                parts.append(c._x or c._render())
            # One rule code, RULE_LAST on the last child (a final Hangup), is the usual valid
            # case; any other sends the document to the full check, which raises with the
            # message if a rule is broken.
            ruled = self._ruled
            if ruled and (ruled > 1 or ch[-1]._r != RULE_LAST):
                self.validate()
            parts.append("</Response>")
            s = "".join(parts)
        else:
            s = _EMPTY
        # Byte length is at most 4x the character count: encode only when it could matter.
        if len(s) > _MAY_BE_TOO_BIG and len(s.encode()) > MAX_BYTES:
            size = len(s.encode())
            advice = "Split it with Redirect."
            if pretty:
                compact = len(self.to_xml().encode())  # raises itself if over the limit too
                advice = (
                    f"The indentation makes it so: compact, to_xml() is {compact} bytes, "
                    "within the limit; serve that (and read pretty output in parts)."
                )
            raise ElementError(
                f"Response: the document is {size} bytes; Vobiz accepts at most "
                f"{MAX_BYTES} (spec §1.0). {advice}",
                element="Response",
                value=size,
            )
        return s

    def __str__(self) -> str:
        return self.to_xml()

    def to_bytes(self, pretty: bool = False) -> bytes:
        """The document as UTF-8 bytes: what a webhook sends."""
        return self.to_xml(pretty).encode()

    def _render(self) -> str:
        # A Response never caches: a nested Gather or Dial may still gain children.
        return self.to_xml()[len(_DECL) :]

    def _start(self) -> str:
        return "<Response"

    def _pretty(self, out: list[str], depth: int) -> None:
        if not self._children:
            out.append("  " * depth + "<Response/>")
            return
        out.append("  " * depth + "<Response>")
        for c in self._children:
            c._pretty(out, depth + 1)
        out.append("  " * depth + "</Response>")


class Play(_TextElement):
    """Play one audio file (MP3 or WAV) from an absolute URL; ``loop=0`` loops forever."""

    __slots__ = ()
    tag = "Play"
    _table = _t.PLAY

    def __init__(self, url: str, /, *, loop: int | None = None, **not_vobiz: NoReturn) -> None:
        if not_vobiz:  # Plivo's digits=, say: the error names the DTMF element
            raise not_vobiz_error(self.tag, self._table, not_vobiz)
        if loop is None:
            self._text, self._x = _PLAY.whole(url)
        else:
            self._text, e = _PLAY.take(url)
            self._x = f"<Play{_t.PLAY.frag['loop'](loop)}>{e}</Play>"


class Wait(Element):
    """A silent pause of ``length`` seconds (as the first element: delays answering).

    With ``silence=True`` the wait ends after ``min_silence`` ms of silence; the document rule
    ``min_silence < length * 1000`` is checked on the values in effect (defaults 2000 and 1),
    for a Wait in Response or in PreAnswer alike.
    """

    __slots__ = ("_r",)
    tag = "Wait"
    _table = _t.WAIT

    def __init__(
        self,
        *,
        length: int | None = None,
        silence: bool | None = None,
        min_silence: int | None = None,
        beep: bool | None = None,
    ) -> None:
        s = "<Wait"
        if length is not None:
            s += _WAIT["length"](length)
        if silence is not None:
            s += _WAIT["silence"](silence)
        if min_silence is not None:
            s += _WAIT["min_silence"](min_silence)
        if beep is not None:
            s += _WAIT["beep"](beep)
        self._x = s + "/>"
        if silence is True:  # the rule applies
            self._ruled_from_attrs()
        else:
            self._r = RULE_NONE

    def _ruled_from_attrs(self) -> None:
        self._r = RULE_CHECK if self._rule(0, 0) is not None else RULE_NONE

    def _rule(self, index: int, last: int) -> str | None:
        a = self._a()
        if a.get("silence") == "true":
            length = int(a.get("length", "1"))
            min_silence = int(a.get("minSilence", "2000"))
            if min_silence >= length * 1000:
                return (
                    f"with silence=True, min_silence ({min_silence} ms) must be less than "
                    f"length x 1000 ({length * 1000} ms); raise length or lower min_silence"
                )
        return None


class Gather(_Container["Speak | Play"]):
    """Collect DTMF and/or speech, then request ``action`` with the input (spec §1.2).

    ``action`` is required (checked by ``validate``). There is no ``timeout``: use
    ``execution_timeout`` (5-60 s). Always give ``input_type`` (its default is undocumented,
    spec §6 item 3), and put fallback elements after the Gather: on a timeout Vobiz either
    moves on or posts empty input, depending on the page you read (spec §6 item 2).
    ``hints`` takes a comma-separated string or a list of phrases.
    """

    __slots__ = ("_r",)
    tag = "Gather"
    _table = _t.GATHER

    def __init__(
        self,
        *children: Speak | Play,
        action: str | None = None,
        method: str | None = None,
        input_type: str | None = None,
        execution_timeout: int | None = None,
        digit_end_timeout: int | str | None = None,
        speech_end_timeout: int | str | None = None,
        finish_on_key: str | None = None,
        num_digits: int | None = None,
        speech_model: str | None = None,
        hints: str | Sequence[str] | None = None,
        language: str | None = None,
        interim_speech_results_callback: str | None = None,
        interim_speech_results_callback_method: str | None = None,
        log: bool | None = None,
        redirect: bool | None = None,
        profanity_filter: bool | None = None,
        **not_vobiz: NoReturn,
    ) -> None:
        if not_vobiz:  # a Plivo or TwiML name, say: the error names the VobizXML one
            raise not_vobiz_error(self.tag, self._table, not_vobiz)
        # The start tag, memoised by the values given (see TagMemo): the usual Gather gives
        # none of the rarer attributes and has a shorter key (a key costs per value, a test
        # of None less), looked up here; a hit counts for values of exactly the types kept.
        if (
            digit_end_timeout is None
            and speech_end_timeout is None
            and speech_model is None
            and hints is None
            and interim_speech_results_callback is None
            and interim_speech_results_callback_method is None
            and log is None
            and redirect is None
            and profanity_filter is None
        ):
            key = (action, method, input_type, execution_timeout, finish_on_key, num_digits,
                   language)  # fmt: skip
            try:
                s = _GATHER_SHORT.memo.get(key)
            except TypeError:  # an unhashable value: tag() refuses it
                s = None
            if s is None or not (
                (action is None or type(action) is str)
                and (method is None or type(method) is str)
                and (input_type is None or type(input_type) is str)
                and (execution_timeout is None or type(execution_timeout) is int)
                and (finish_on_key is None or type(finish_on_key) is str)
                and (num_digits is None or type(num_digits) is int)
                and (language is None or type(language) is str)
            ):
                s = _GATHER_SHORT.tag(key)
        else:
            s = _GATHER_FULL.get(
                (action, method, input_type, execution_timeout, digit_end_timeout,
                 speech_end_timeout, finish_on_key, num_digits, speech_model, hints, language,
                 interim_speech_results_callback, interim_speech_results_callback_method, log,
                 redirect, profanity_filter)
            )  # fmt: skip
        self._r = RULE_CHECK if action is None else RULE_NONE  # action is required
        self._open = s
        if not children:
            self._children = []
            self._x = s + "/>"
            return
        self._children = [*children]
        # Checked and rendered in one pass: Speak and Play never change (add() drops _x).
        body = ""
        for k in children:
            t = type(k)
            if t is not Speak and t is not Play:
                self._take(children)  # subclasses pass there; anything else raises
                self._x = None
                self._render()
                return
            body += k._x  # type: ignore[operator]
        self._x = f"{s}>{body}</Gather>"

    def add(self, child: _GatherChildT) -> _GatherChildT:
        """Append ``child`` (a Speak or Play) and return it."""
        self._append(child)
        return child

    def _ruled_from_attrs(self) -> None:
        self._r = RULE_NONE if "action" in self._a() else RULE_CHECK

    def _rule(self, index: int, last: int) -> str | None:
        if "action" not in self._a():
            return "action is required: the URL that receives the digits or speech"
        return None


class Redirect(_TextElement):
    """Continue with the document at the URL; it must be the last element."""

    __slots__ = ()
    tag = "Redirect"
    _table = _t.REDIRECT
    _r = RULE_LAST

    def __init__(self, url: str, /, *, method: str | None = None) -> None:
        if method is None:
            self._text, self._x = _REDIRECT.whole(url)
        else:
            self._text, e = _REDIRECT.take(url)
            self._x = f"<Redirect{_t.REDIRECT.frag['method'](method)}>{e}</Redirect>"

    def _rule(self, index: int, last: int) -> str | None:
        return None if index == last else "must be the last element: nothing after it runs"


class Hangup(Element):
    """End the call (as the first element: reject it). ``reason``: rejected or busy.

    Nothing may follow a Hangup, except with ``schedule=N`` (hang up after N seconds), where
    the elements that follow play until then.
    """

    __slots__ = ("_r",)
    tag = "Hangup"
    _table = _t.HANGUP

    def __init__(self, *, reason: str | None = None, schedule: int | None = None) -> None:
        if reason is None and schedule is None:
            self._x = "<Hangup/>"
            self._r = RULE_LAST
        else:
            s = "<Hangup"
            if reason is not None:
                s += _t.HANGUP.frag["reason"](reason)
            if schedule is not None:
                s += _t.HANGUP.frag["schedule"](schedule)
            self._x = s + "/>"
            self._r = RULE_LAST if schedule is None else RULE_NONE

    def _ruled_from_attrs(self) -> None:
        self._r = RULE_NONE if "schedule" in self._a() else RULE_LAST

    def _rule(self, index: int, last: int) -> str | None:
        if index == last or "schedule" in self._a():
            return None
        return "ends the call, so nothing may follow it (use schedule=N to hang up later)"


class PreAnswer(_Container["Speak | Play | Wait"]):
    """Early media before answering (unbilled): Speak, Play and Wait; the first child only."""

    __slots__ = ()
    tag = "PreAnswer"
    _table = _t.PREANSWER
    _r = RULE_FIRST

    def __init__(self, *children: Speak | Play | Wait) -> None:
        self._open = "<PreAnswer"
        self._x = None
        self._take(children)

    def add(self, child: _PreAnswerChildT) -> _PreAnswerChildT:
        """Append ``child`` (a Speak, Play or Wait) and return it."""
        self._append(child)
        return child

    def _rule(self, index: int, last: int) -> str | None:
        return None if index == 0 else "must be the first child of Response"


class DTMF(_TextElement):
    """Send DTMF tones: ``0-9 * #``, ``w`` (0.5 s pause), ``W`` (1 s pause)."""

    __slots__ = ()
    tag = "DTMF"
    _table = _t.DTMF

    def __init__(self, digits: str, /, *, async_: bool | None = None) -> None:
        if async_ is None:
            self._text, self._x = _DTMF.whole(digits)
        else:
            self._text, e = _DTMF.take(digits)
            self._x = f"<DTMF{_t.DTMF.frag['async_'](async_)}>{e}</DTMF>"


#: What a Response takes: annotate a helper that builds part of a document
#: ``-> list[ResponseChild]`` and pass its result with ``Response(*parts)``.
ResponseChild = (
    Speak
    | Play
    | Wait
    | Gather
    | Dial
    | Record
    | Conference
    | Redirect
    | Hangup
    | PreAnswer
    | DTMF
    | Stream
)


def _allow(parent: type[Element], *kids: type[Element]) -> None:
    parent._kid_order = kids
    parent._kids = frozenset(kids)


_allow(
    Response,
    Speak, Play, Wait, Gather, Dial, Record, Conference, Redirect, Hangup, PreAnswer, DTMF, Stream,
)  # fmt: skip
_allow(Gather, Speak, Play)
_allow(Dial, Number, User)
_allow(PreAnswer, Speak, Play, Wait)
#: Response's children by class: 1 if it may have a rule code (a class constant, Redirect,
#: or a slot of its own, Hangup), 0 if never (Speak...). Anything else is not a child.
_KIND: dict[type[Element], int] = {c: 0 if c._r == RULE_NONE else 1 for c in Response._kid_order}


def _count_ruled(children: Sequence[Element]) -> int:
    n = 0
    for c in children:  # a loop: a generator costs more on the parsers' small documents
        if c._r:
            n += 1
    return n


#: Tag -> class, for the parser.
_ALL: tuple[type[Element], ...] = (Response, *Response._kid_order, Number, User)
ELEMENTS: dict[str, type[Element]] = {c.tag: c for c in _ALL}
