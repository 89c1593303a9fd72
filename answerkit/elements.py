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

Rendering is plain string building: leaf elements are immutable and cache their XML, so a
document renders by joining cached strings (see the benchmark in ``benchmarks/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from answerkit import _tables as _t
from answerkit._attributes import esc_text, remember
from answerkit._calls import Conference, Dial, Number, Record, Stream, User
from answerkit._element import _DECL, _NOATTRS, MAX_BYTES, Element, _Container, _TextElement
from answerkit._tables import TEXTS
from answerkit.errors import ElementError
from answerkit.ssml import SPEAK_SSML, SSML, normalize, plain_text, render_content

if TYPE_CHECKING:
    from answerkit.lint import LintWarning

_E = TypeVar("_E", bound=Element)

__all__ = [
    "DTMF", "Conference", "Dial", "Element", "Gather", "Hangup", "Number", "Play", "PreAnswer",
    "Record", "Redirect", "Response", "Speak", "Stream", "User", "Wait",
]  # fmt: skip


class Response(_Container):
    """The document root: exactly one, no attributes; its children run top to bottom."""

    __slots__ = ()
    tag = "Response"

    def __init__(self, *children: ResponseChild) -> None:
        self._attrs = _NOATTRS
        self._open = "<Response"
        self._x = None
        kids = self._kids
        for c in children:
            if type(c) not in kids:
                self._take(children)  # subclasses pass there; anything else raises
                return
        self._children = list(children)

    def _problem(self) -> tuple[int, ElementError] | None:
        # Only direct children carry document rules; everything else was checked when built.
        ch = self._children
        last = len(ch) - 1
        for i, c in enumerate(ch):
            if c._ruled:
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
            # Validation and rendering in one pass over the direct children.
            last = len(ch) - 1
            s = _DECL + "<Response>"
            for i, c in enumerate(ch):
                if c._ruled and c._rule(i, last) is not None:
                    self.validate()  # raises, with the message
                s += c._x or c._render()
            s += "</Response>"
        else:
            s = _DECL + "<Response/>"
        # Byte length is at most 4x the character count: encode only when it could matter.
        if len(s) > MAX_BYTES // 4 and len(s.encode()) > MAX_BYTES:
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


_SPOKEN: dict[str, str] = {}  # plain text -> "<Speak>escaped</Speak>"


def _speak_plain(text: str) -> str:
    # Printable (no control characters, no \r) and starting with a non-space (not blank) is
    # the fast check; anything else gets the full one, which raises with the reason.
    if not (text.isprintable() and text[:1] > " "):
        normalize("Speak", (text,), ())
        if not text.strip():
            raise ElementError(
                f"Speak: text is required (non-blank), got {text!r}", element="Speak", value=text
            )
    return remember(_SPOKEN, text, "<Speak>" + esc_text(text) + "</Speak>", 4096)


class Speak(Element):
    """Text-to-speech. Content is plain text, or text mixed with SSML nodes (``ssml.py``).

    ``voice`` is ``WOMAN`` or ``MAN`` only: Vobiz's SSML page shows ``Polly.*`` voices but
    the Speak table does not (spec §6 item 14), so the documented values are the safe choice.
    ``language`` is one of the voice table's codes (plus ``en-IN``, ``hi-IN``). ``loop=0``
    repeats forever. Text is kept exactly as given (not trimmed).
    """

    __slots__ = ("_ssml", "_text")
    tag = "Speak"
    _table = _t.SPEAK

    _text: str
    _ssml: tuple[str | SSML, ...] | None

    def __init__(
        self,
        text: str | SSML,
        /,
        *more: str | SSML,
        voice: str | None = None,
        language: str | None = None,
        loop: int | None = None,
    ) -> None:
        if voice is None and language is None and loop is None:
            self._attrs = _NOATTRS
            if not more and type(text) is str:
                # The common case: one plain string. Checked, escaped and rendered at once;
                # prompts repeat on every call, so the rendering is memoised (bounded).
                x = _SPOKEN.get(text)
                if x is None:
                    x = _speak_plain(text)
                self._text = text
                self._ssml = None
                self._x = x
                return
            head = "<Speak>"
        else:
            a: dict[str, str] = {}
            head = "<Speak"
            if voice is not None:
                head += _t.SPEAK["voice"].put(a, voice)
            if language is not None:
                head += _t.SPEAK["language"].put(a, language)
            if loop is not None:
                head += _t.SPEAK["loop"].put(a, loop)
            self._attrs = a
            head += ">"
        self._set_content((text, *more))
        self._x = None if self._ssml is not None else head + esc_text(self._text) + "</Speak>"

    def _set_content(self, content: Sequence[object]) -> None:
        items = normalize("Speak", content, SPEAK_SSML)
        text = plain_text(items)
        if not text.strip():
            raise ElementError(
                f"Speak: text is required (non-blank), got {content!r}",
                element="Speak",
                value=content,
            )
        self._text = text
        self._ssml = None if len(items) == 1 and type(items[0]) is str else items

    @property
    def text(self) -> str:
        return self._text

    @property
    def ssml(self) -> list[str | SSML]:
        """The content as given: strings and SSML nodes."""
        return [self._text] if self._ssml is None else list(self._ssml)

    def _key(self) -> tuple[object, ...]:
        return (self._attrs, self._text, self._ssml)

    def _args(self) -> list[str]:
        return [repr(x) for x in self.ssml]

    def _render(self) -> str:
        body = esc_text(self._text) if self._ssml is None else render_content(self._ssml)
        x = self._x = f"<Speak{self._astr()}>{body}</Speak>"
        return x

    @classmethod
    def _parsed(cls: type[_E], attrs: dict[str, str], text: str | None, kids: list[object]) -> _E:
        el = cls.__new__(cls)
        assert isinstance(el, Speak)
        el._attrs = attrs
        el._x = None
        if not kids and text is not None:  # plain text: the memoised check of the constructor
            x = _SPOKEN.get(text)
            if x is None:
                x = _speak_plain(text)
            el._text = text
            el._ssml = None
            if not attrs:
                el._x = x
        else:
            el._set_content([text, *kids] if text else kids)
        return el


class Play(_TextElement):
    """Play one audio file (MP3 or WAV) from an absolute URL; ``loop=0`` loops forever."""

    __slots__ = ()
    tag = "Play"
    _table = _t.PLAY

    def __init__(self, url: str, /, *, loop: int | None = None) -> None:
        self._text, e = TEXTS["Play"].take(url)
        if loop is None:
            self._attrs = _NOATTRS
            s = ""
        else:
            a: dict[str, str] = {}
            self._attrs = a
            s = _t.PLAY["loop"].put(a, loop)
        self._x = f"<Play{s}>{e}</Play>"


class Wait(Element):
    """A silent pause of ``length`` seconds (as the first element: delays answering).

    With ``silence=True`` the wait ends after ``min_silence`` ms of silence; the document rule
    ``min_silence < length * 1000`` is checked on the values in effect (defaults 2000 and 1).
    """

    __slots__ = ()
    tag = "Wait"
    _table = _t.WAIT
    _ruled = True

    def __init__(
        self,
        *,
        length: int | None = None,
        silence: bool | None = None,
        min_silence: int | None = None,
        beep: bool | None = None,
    ) -> None:
        t = _t.WAIT
        a: dict[str, str] = {}
        s = ""
        if length is not None:
            s += t["length"].put(a, length)
        if silence is not None:
            s += t["silence"].put(a, silence)
        if min_silence is not None:
            s += t["min_silence"].put(a, min_silence)
        if beep is not None:
            s += t["beep"].put(a, beep)
        self._attrs = a
        self._x = f"<Wait{s}/>"

    def _rule(self, index: int, last: int) -> str | None:
        a = self._attrs
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

    __slots__ = ()
    tag = "Gather"
    _table = _t.GATHER
    _ruled = True

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
        t = _t.GATHER
        a: dict[str, str] = {}
        s = ""
        if action is not None:
            s += t["action"].put(a, action)
        if method is not None:
            s += t["method"].put(a, method)
        if input_type is not None:
            s += t["input_type"].put(a, input_type)
        if execution_timeout is not None:
            s += t["execution_timeout"].put(a, execution_timeout)
        if digit_end_timeout is not None:
            s += t["digit_end_timeout"].put(a, digit_end_timeout)
        if speech_end_timeout is not None:
            s += t["speech_end_timeout"].put(a, speech_end_timeout)
        if finish_on_key is not None:
            s += t["finish_on_key"].put(a, finish_on_key)
        if num_digits is not None:
            s += t["num_digits"].put(a, num_digits)
        if speech_model is not None:
            s += t["speech_model"].put(a, speech_model)
        if hints is not None:
            s += t["hints"].put(a, hints)
        if language is not None:
            s += t["language"].put(a, language)
        if interim_speech_results_callback is not None:
            s += t["interim_speech_results_callback"].put(a, interim_speech_results_callback)
        if interim_speech_results_callback_method is not None:
            s += t["interim_speech_results_callback_method"].put(
                a, interim_speech_results_callback_method
            )
        if log is not None:
            s += t["log"].put(a, log)
        if redirect is not None:
            s += t["redirect"].put(a, redirect)
        if profanity_filter is not None:
            s += t["profanity_filter"].put(a, profanity_filter)
        self._attrs = a
        self._open = "<Gather" + s
        self._x = None
        for c in children:
            if type(c) is not Speak and type(c) is not Play:
                self._take(children)  # subclasses pass there; anything else raises
                return
        self._children = list(children)

    def _rule(self, index: int, last: int) -> str | None:
        if "action" not in self._attrs:
            return "action is required: the URL that receives the digits or speech"
        return None


class Redirect(_TextElement):
    """Continue with the document at the URL; it must be the last element."""

    __slots__ = ()
    tag = "Redirect"
    _table = _t.REDIRECT
    _ruled = True

    def __init__(self, url: str, /, *, method: str | None = None) -> None:
        self._text, e = TEXTS["Redirect"].take(url)
        if method is None:
            self._attrs = _NOATTRS
            s = ""
        else:
            a: dict[str, str] = {}
            self._attrs = a
            s = _t.REDIRECT["method"].put(a, method)
        self._x = f"<Redirect{s}>{e}</Redirect>"

    def _rule(self, index: int, last: int) -> str | None:
        return None if index == last else "must be the last element: nothing after it runs"


class Hangup(Element):
    """End the call (as the first element: reject it). ``reason``: rejected or busy.

    Nothing may follow a Hangup, except with ``schedule=N`` (hang up after N seconds), where
    the elements that follow play until then.
    """

    __slots__ = ()
    tag = "Hangup"
    _table = _t.HANGUP
    _ruled = True

    def __init__(self, *, reason: str | None = None, schedule: int | None = None) -> None:
        if reason is None and schedule is None:
            self._attrs = _NOATTRS
            self._x = "<Hangup/>"
        else:
            a: dict[str, str] = {}
            self._attrs = a
            s = ""
            if reason is not None:
                s += _t.HANGUP["reason"].put(a, reason)
            if schedule is not None:
                s += _t.HANGUP["schedule"].put(a, schedule)
            self._x = f"<Hangup{s}/>"

    def _rule(self, index: int, last: int) -> str | None:
        if index == last or "schedule" in self._attrs:
            return None
        return "ends the call, so nothing may follow it (use schedule=N to hang up later)"


class PreAnswer(_Container):
    """Early media before answering (unbilled): Speak, Play and Wait; the first child only."""

    __slots__ = ()
    tag = "PreAnswer"
    _table = _t.PREANSWER
    _ruled = True

    def __init__(self, *children: Speak | Play | Wait) -> None:
        self._attrs = _NOATTRS
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
        self._text, e = TEXTS["DTMF"].take(digits)
        if async_ is None:
            self._attrs = _NOATTRS
            s = ""
        else:
            a: dict[str, str] = {}
            self._attrs = a
            s = _t.DTMF["async_"].put(a, async_)
        self._x = f"<DTMF{s}>{e}</DTMF>"


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

#: Tag -> class, for the parser.
_ALL: tuple[type[Element], ...] = (Response, *Response._kid_order, Number, User)
ELEMENTS: dict[str, type[Element]] = {c.tag: c for c in _ALL}
