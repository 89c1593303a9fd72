"""Speak: text-to-speech, plain text or text mixed with SSML; re-exported by
:mod:`answerkit.elements`.

The most used element: prompts, menus and messages are Speaks, and most are the same few
strings on every call, so the checked and rendered form of a plain text is memoised.

Text is trimmed (spec §1.0, Whitespace): the outer whitespace of a plain text, and of the
first and last strings of SSML content. The memo holds only texts with nothing to trim, so a
hit is also the text to keep.
"""

from __future__ import annotations

from collections.abc import Sequence

from answerkit import _tables as _t
from answerkit._element import Element
from answerkit._xmltext import MEMO_MAX_LEN, esc_text, shown
from answerkit.errors import ElementError
from answerkit.ssml import SPEAK_SSML, SSML, normalize, plain_text, render_content

_SPEAK = _t.SPEAK.frag

_SPOKEN: dict[str, str] = {}  # plain text -> "<Speak>escaped</Speak>"
_SPOKEN_LIMIT = 4096


def _refuse_positional_settings(text: object, more: tuple[object, ...]) -> None:
    """Refuse plivoxml's ``SpeakElement(text, voice, language)`` order: plain text, then
    a voice or a language as one more positional piece, would be spoken aloud ("Hello
    WOMAN en-US"). SSML mixed with text is spoken as written, whatever its words."""
    if type(text) is not str or any(type(piece) is not str for piece in more):
        return
    for piece in more:
        if type(piece) is str and piece.strip() in _POSITIONAL_SETTINGS:
            name = "voice" if piece.strip() in ("WOMAN", "MAN") else "language"
            raise ElementError(
                f"Speak: {piece!r} was given as text to speak; a {name} is a keyword: "
                f"Speak(text, {name}={piece.strip()!r})",
                element="Speak",
                attribute=name,
                value=piece,
            )


_POSITIONAL_SETTINGS = frozenset(("WOMAN", "MAN", *_t.SPEAK_LANGUAGES))


def _speak_checked(text: str) -> tuple[str, str]:
    """The trimmed text and ``<Speak>trimmed</Speak>`` after the full check, which raises
    with the reason."""
    if text and text.isprintable() and text.strip() is text:  # the fast check, as in Speak()
        return text, _remember_speak(text, f"<Speak>{esc_text(text)}</Speak>")
    normalize("Speak", (text,), ())  # characters XML cannot carry
    t = text.strip()
    if not t:
        raise ElementError(
            f"Speak: text is required (non-blank), got {shown(text)}", element="Speak", value=text
        )
    return t, _remember_speak(t, f"<Speak>{esc_text(t)}</Speak>")


def _remember_speak(text: str, x: str) -> str:
    # Bounded like every memo here (see _xmltext.remember): the first prompts stay. Once full,
    # a flag tells the constructor not to call here: a never-seen text costs a test, no more.
    global _spoken_full
    if len(_SPOKEN) < _SPOKEN_LIMIT:
        if len(text) <= MEMO_MAX_LEN:
            _SPOKEN[text] = x
    else:
        _spoken_full = True
    return x


_spoken_full = False  # _SPOKEN has reached _SPOKEN_LIMIT (it never shrinks)


def _trimmed(items: tuple[str | SSML, ...]) -> tuple[str | SSML, ...]:
    """Content with the outer whitespace of its first and last strings removed (an item left
    empty is dropped); whitespace next to an SSML node at either end stays."""
    if not items:
        return items
    first, last = items[0], items[-1]
    if (type(first) is str and first[:1].isspace()) or (type(last) is str and last[-1:].isspace()):
        out = list(items)
        if type(first) is str:
            out[0] = first.lstrip()
        if type(out[-1]) is str:
            out[-1] = out[-1].rstrip()
        return tuple(x for x in out if x != "")
    return items


class Speak(Element):
    """Text-to-speech. Content is plain text, or text mixed with SSML nodes (``ssml.py``).

    ``voice`` is ``WOMAN`` or ``MAN`` only: Vobiz's SSML page shows ``Polly.*`` voices but
    the Speak table does not (spec §6 item 14), so the documented values are the safe choice.
    ``language`` is one of the voice table's codes (plus ``en-IN``, ``hi-IN``). ``loop=0``
    repeats forever. Text is trimmed (spec §1.0): ``Speak("  Hello\n")`` is ``Speak("Hello")``;
    with SSML, the start of the first string and the end of the last one are, and the
    whitespace between words and nodes is kept.
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
            if not more and type(text) is str:
                # The common case: one plain string. Checked, escaped and rendered at once;
                # prompts repeat on every call, so the rendering is memoised (bounded).
                x = _SPOKEN.get(text)
                if x is None:
                    # Printable (no control character, no \r to escape) with nothing to trim
                    # (so not blank either) is the fast check; else the full one, which
                    # trims. strip() returns the very same str when it has nothing to strip
                    # (CPython): as cheap as a test of either end. Elsewhere it is only slower.
                    if text and text.isprintable() and text.strip() is text:
                        # esc_text written out: \r is not printable, so three characters
                        # remain; one test first, since most texts have none of them.
                        if "&" in text or "<" in text or ">" in text:
                            e = text.replace("&", "&amp;").replace("<", "&lt;")
                            x = f"<Speak>{e.replace('>', '&gt;')}</Speak>"
                        else:
                            x = f"<Speak>{text}</Speak>"
                        if not _spoken_full:
                            _remember_speak(text, x)
                    else:
                        text, x = _speak_checked(text)
                self._text = text
                self._ssml = None
                self._x = x
                return
            head = "<Speak>"
        else:
            head = "<Speak"
            if voice is not None:
                head += _SPEAK["voice"](voice)
            if language is not None:
                head += _SPEAK["language"](language)
            if loop is not None:
                head += _SPEAK["loop"](loop)
            head += ">"
        if more and len(more) <= 2:
            _refuse_positional_settings(text, more)
        self._set_content((text, *more))
        # SSML nodes never change either: rendered now, like plain text.
        ssml = self._ssml
        body = esc_text(self._text) if ssml is None else render_content(ssml)
        self._x = head + body + "</Speak>"

    def _set_content(self, content: Sequence[object]) -> None:
        items = _trimmed(normalize("Speak", content, SPEAK_SSML))
        text = plain_text(items)
        if not text.strip():
            # The text itself when there is one piece, "" when none (an empty <Speak/>).
            given: object = content[0] if len(content) == 1 else (content or "")
            raise ElementError(
                f"Speak: text is required (non-blank), got {shown(given)}",
                element="Speak",
                value=given,
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
        return (self._a(), self._text, self._ssml)

    def _args(self) -> list[str]:
        return [repr(x) for x in self.ssml]

    def _render(self) -> str:
        body = esc_text(self._text) if self._ssml is None else render_content(self._ssml)
        x = self._x = f"<Speak{self._astr()}>{body}</Speak>"
        return x

    @classmethod
    def _parsed(
        cls, attrs: dict[str, str], start: str, text: str | None, kids: Sequence[object]
    ) -> Element:
        el = cls._blank(attrs)
        if not kids and text is not None:  # plain text: the memoised check of the constructor
            x = _SPOKEN.get(text)
            if x is None:
                text, x = _speak_checked(text)
            el._text = text
            el._ssml = None
            el._x = f"{start}>{x[7:]}" if attrs else x  # x[7:]: after "<Speak>"
        else:
            el._set_content([text, *kids] if text else kids)
            ssml = el._ssml
            body = esc_text(el._text) if ssml is None else render_content(ssml)
            el._x = f"{start}>{body}</Speak>"
        return el
