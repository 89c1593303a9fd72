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
from typing import TYPE_CHECKING

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
    start_tag,
)
from answerkit._speak import Speak
from answerkit._tables import TEXTS
from answerkit.errors import ElementError

if TYPE_CHECKING:
    from answerkit.lint import LintWarning

__all__ = [
    "DTMF", "Conference", "Dial", "Element", "Gather", "Hangup", "Number", "Play", "PreAnswer",
    "Record", "Redirect", "Response", "Speak", "Stream", "User", "Wait",
]  # fmt: skip

# Each attribute's bound checker by Python name (see Table.frag); the text checkers likewise.
_WAIT = _t.WAIT.frag
_GATHER = _t.GATHER.frag
_GATHER_CACHED = _t.GATHER.cached
_GATHER_FRESH = _t.GATHER.fresh
_PLAY = TEXTS["Play"]
_REDIRECT = TEXTS["Redirect"]
_DTMF = TEXTS["DTMF"]

_OPEN = _DECL + "<Response>"
_EMPTY = _DECL + "<Response/>"
#: A document this long in characters may be over MAX_BYTES once encoded (4 bytes a char).
_MAY_BE_TOO_BIG = MAX_BYTES // 4


class Response(_Container):
    """The document root: exactly one, no attributes; its children run top to bottom."""

    __slots__ = ()
    tag = "Response"

    def __init__(self, *children: ResponseChild) -> None:
        # No _open or _x: a Response has no attributes and never caches its XML, since a
        # nested Gather or Dial may still gain children.
        for c in children:
            if type(c) not in _RESPONSE_KIDS:
                self._take(children)  # subclasses pass there; anything else raises
                return
        self._children = list(children)

    @classmethod
    def _parsed(
        cls, attrs: dict[str, str], start: str, text: str | None, kids: Sequence[object]
    ) -> Element:
        if attrs or (text and not text.isspace()):
            raise ElementError("Response: takes no attributes or text", element="Response")
        return cls(*kids)  # type: ignore[arg-type]

    def _problem(self) -> tuple[int, ElementError] | None:
        # Only direct children carry document rules; everything else was checked when built.
        ch = self._children
        last = len(ch) - 1
        for i, c in enumerate(ch):
            msg = c._rule(i, last)
            if msg is not None:
                where = f"{c.tag} (child {i + 1} of {last + 1} in Response)"
                return i, ElementError(f"{where}: {msg}", element=c.tag, value=c)
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
            # Rendering and the rule codes in one pass. One code, RULE_LAST on the last child
            # (a final Hangup), is the usual valid case; any other sends the document to the
            # full check, which raises with the message if a rule is broken.
            parts = [_OPEN]
            ruled = 0
            for c in ch:
                parts.append(c._x or c._render())
                if c._r:
                    ruled += 1
            if ruled and (ruled > 1 or ch[-1]._r != RULE_LAST):
                self.validate()
            parts.append("</Response>")
            s = "".join(parts)
        else:
            s = _EMPTY
        # Byte length is at most 4x the character count: encode only when it could matter.
        if len(s) > _MAY_BE_TOO_BIG and len(s.encode()) > MAX_BYTES:
            raise ElementError(
                f"Response: the document is {len(s.encode())} bytes; Vobiz accepts at most "
                f"{MAX_BYTES} (spec §1.0). Split it with Redirect.",
                element="Response",
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

    def __init__(self, url: str, /, *, loop: int | None = None) -> None:
        if loop is None:
            self._text, self._x = _PLAY.whole(url)
        else:
            self._text, e = _PLAY.take(url)
            self._x = f"<Play{_t.PLAY.frag['loop'](loop)}>{e}</Play>"


class Wait(Element):
    """A silent pause of ``length`` seconds (as the first element: delays answering).

    With ``silence=True`` the wait ends after ``min_silence`` ms of silence; the document rule
    ``min_silence < length * 1000`` is checked on the values in effect (defaults 2000 and 1).
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


class Gather(_Container):
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
    ) -> None:
        # Memo lookups inline (c), the full check on a miss (n); Int and Bool kinds have no
        # memo and go to frag (f) at once. An unhashable value makes a lookup raise TypeError,
        # and the general path decides.
        c, n, f = _GATHER_CACHED, _GATHER_FRESH, _GATHER
        try:
            s = "<Gather"
            if action is not None:
                s += c["action"](action) or n["action"](action)
            if method is not None:
                s += c["method"](method) or n["method"](method)
            if input_type is not None:
                s += c["input_type"](input_type) or n["input_type"](input_type)
            if execution_timeout is not None:
                s += f["execution_timeout"](execution_timeout)
            if digit_end_timeout is not None:
                s += c["digit_end_timeout"](digit_end_timeout) or n["digit_end_timeout"](
                    digit_end_timeout
                )
            if speech_end_timeout is not None:
                s += c["speech_end_timeout"](speech_end_timeout) or n["speech_end_timeout"](
                    speech_end_timeout
                )
            if finish_on_key is not None:
                s += c["finish_on_key"](finish_on_key) or n["finish_on_key"](finish_on_key)
            if num_digits is not None:
                s += f["num_digits"](num_digits)
            if speech_model is not None:
                s += c["speech_model"](speech_model) or n["speech_model"](speech_model)
            if hints is not None:
                s += f["hints"](hints)  # often a list
            if language is not None:
                s += c["language"](language) or n["language"](language)
            if interim_speech_results_callback is not None:
                s += f["interim_speech_results_callback"](interim_speech_results_callback)
            if interim_speech_results_callback_method is not None:
                s += f["interim_speech_results_callback_method"](
                    interim_speech_results_callback_method
                )
            if log is not None:
                s += f["log"](log)
            if redirect is not None:
                s += f["redirect"](redirect)
            if profanity_filter is not None:
                s += f["profanity_filter"](profanity_filter)
        except TypeError:
            s = start_tag("Gather", _t.GATHER, locals())
        self._r = RULE_CHECK if action is None else RULE_NONE  # action is required
        self._open = s
        self._children = list(children)
        if not children:
            self._x = s + "/>"
            return
        # Checked and rendered in one pass: Speak and Play never change (add() drops _x).
        s += ">"
        for k in children:
            if type(k) is not Speak and type(k) is not Play:
                self._take(children)  # subclasses pass there; anything else raises
                self._x = None
                self._render()
                return
            s += k._x  # type: ignore[operator]
        self._x = s + "</Gather>"

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


class PreAnswer(_Container):
    """Early media before answering (unbilled): Speak, Play and Wait; the first child only."""

    __slots__ = ()
    tag = "PreAnswer"
    _table = _t.PREANSWER
    _r = RULE_FIRST

    def __init__(self, *children: Speak | Play | Wait) -> None:
        self._open = "<PreAnswer"
        self._x = None
        self._take(children)

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
_RESPONSE_KIDS = Response._kids

#: Tag -> class, for the parser.
_ALL: tuple[type[Element], ...] = (Response, *Response._kid_order, Number, User)
ELEMENTS: dict[str, type[Element]] = {c.tag: c for c in _ALL}
