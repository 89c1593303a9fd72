"""An IVR menu: a prompt, options by key or phrase, retries, and a final fallback.

The menu compiles to two ordinary routes of the flow: ``/{name}`` plays the prompt in a
``Gather`` and ``/{name}/choice`` receives the input. The attempt number and the reason
for a re-prompt travel in the query string, so duplicate callbacks and several workers
need no shared state. Vobiz documents the Gather timeout two ways (spec §6 item 2): it
either posts empty input to ``action`` or moves on to the next element; the menu handles
both, with a ``Redirect`` after the ``Gather`` and an empty-input branch on the action.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from answerkit._keywords import advise_keywords
from answerkit._log import QuietLog
from answerkit._xmltext import shown
from answerkit.elements import Gather, Hangup, Redirect, Response, Speak
from answerkit.errors import ConfigurationError, ElementError
from answerkit.recipes._targets import Action as Action
from answerkit.recipes._targets import Target as Target
from answerkit.recipes._targets import (
    answered,
    check_no_loop,
    check_target,
    hold_targets,
    passes_on,
)
from answerkit.request import CallRequest

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = QuietLog("answerkit")

#: Plivo's GetInput/GetDigits names, and what IVRMenu takes for them.
_IVR_RENAMED = {
    "timeout": "use execution_timeout= (seconds to wait for the choice)",
    "retry": "use retries=",
    "max_retries": "use retries=",
    "valid_digits": "use options= (a mapping of each key to its route)",
    "invalid_digits_sound": "use invalid_prompt=",
}

#: What an IVRMenu's name may not hold: it is a route name (no dots, which Flask takes as a
#: blueprint's) and a path (nothing a URL would carry badly).
_NOT_IN_NAMES = re.compile(r"[\s.?#<]")

VALID_KEYS = frozenset("0123456789*#")

# Gather hints limits (spec §1.2): checked when the menu is built, since a Gather with too
# many hints is refused, and the menu would then fail on every prompt.
MAX_HINTS = 500
MAX_HINTS_CHARS = 10_000

# Scripts written without spaces between words (Han, kana, Thai, Lao, Myanmar, Khmer):
# there a phrase cannot be matched as whole words. Not Korean: Hangul is written with
# spaces, only its particles attach to the end of a word (see _HANGUL).
_UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)
_HANGUL = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0xAC00, 0xD7AF),  # Hangul syllables
)

# The apostrophe is part of a word, in every form speech recognisers write it: deleted,
# "I'd" became "id" and "we'll" "well", other words; made a space, "can't" became "can t"
# and "yes I can" matched "yes I can't".
_APOSTROPHES = str.maketrans({0x2019: "'", 0x2BC: "'"})
# Deleted: the optional vowel marks of Arabic (and the tatweel that stretches a word) and
# Hebrew, which a phrase may carry and recognised speech usually does not.
_DROPPED = str.maketrans(
    dict.fromkeys(
        [0x640, 0x670, *range(0x64B, 0x660)]
        + [c for c in range(0x591, 0x5C8) if unicodedata.category(chr(c)) == "Mn"]
    )
)


@dataclass(frozen=True)
class Option:
    """One menu choice: where it leads (a route name or a handler) and the phrases that pick it.

    ``phrases`` is any sequence of strings (kept as a tuple); a lone string is refused.
    ``label`` is a name of your own for the option (for your code: analytics, a menu
    listing); the menu neither says nor checks it.
    """

    target: Target
    phrases: Sequence[str] = ()
    label: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.phrases, str):
            # Taken letter by letter, phrases="buy" would make "b", "u" and "y" phrases, and
            # any utterance containing a "u" would pick this option.
            raise ConfigurationError(
                f"Option {self.target!r}: phrases must be a sequence of phrases such as "
                f"({self.phrases!r},), not the single string {self.phrases!r}"
            )
        if not isinstance(self.phrases, Iterable):
            raise ConfigurationError(
                f"Option {self.target!r}: phrases must be a sequence of strings, such as "
                f"('sales', 'buy'), got {self.phrases!r}"
            )
        # A tuple whatever was given (a generator is read once, here): the option stays
        # hashable, as a frozen dataclass is.
        phrases = tuple(self.phrases)
        if not all(isinstance(p, str) for p in phrases):
            raise ConfigurationError(
                f"Option {self.target!r}: phrases must be a sequence of strings, such as "
                f"('sales', 'buy'), got {phrases!r}"
            )
        object.__setattr__(self, "phrases", phrases)


def _goodbye(call: CallRequest) -> Response:
    # The last try brought nothing (no key, no speech: Digits absent or empty) or a choice
    # that is not on the menu: a silent caller was told "we could not understand".
    if call.digits or call.speech:
        return Response(Speak("We could not understand your choice. Goodbye."), Hangup())
    return Response(Speak("We did not hear a choice. Goodbye."), Hangup())


class IVRMenu:
    """A menu of keys (and optionally spoken phrases) mapped to routes or handlers.

    ``options`` maps a key (``"1"``) to a route name, a handler, or an :class:`Option`
    with phrases. After ``retries`` failed attempts (no input or an invalid choice)
    the caller goes to ``fallback`` (a route name or a handler; by default an apology
    and a hangup). Speech recognised with a ``SpeechConfidenceScore`` below
    ``min_confidence`` (default 0.5) is not acted on: it counts as an invalid choice
    (speech that comes without a readable score, which the spec lists but a platform may
    leave out, is acted on).
    The whole graph is checked when the flow is mounted: a target that
    is not a route of the flow is a :class:`~answerkit.ConfigurationError`.
    """

    @advise_keywords("IVRMenu", _IVR_RENAMED)
    def __init__(
        self,
        flow: CallFlow,
        name: str,
        *,
        prompt: str,
        options: Mapping[str, Target | Option],
        retries: int = 2,
        no_input_prompt: str = "Sorry, we did not get your choice.",
        invalid_prompt: str = "Sorry, that is not a valid choice.",
        fallback: Target = _goodbye,
        input_type: str | None = None,
        execution_timeout: int = 6,
        voice: str | None = None,
        language: str | None = None,
        speech_language: str | None = None,
        min_confidence: float = 0.5,
    ) -> None:
        if (
            not isinstance(name, str)
            or not name.isprintable()
            or not name
            or _NOT_IN_NAMES.search(name)
        ):
            # It is the menu's path (/name) and route name: a space made every Gather's
            # action an invalid URL; an empty one, routes named after private methods.
            raise ConfigurationError(
                f"IVRMenu name must be text without spaces, dots or ?#< (it names the "
                f"menu's route and is its path, /name), got {name!r}"
            )
        if not isinstance(options, Mapping):
            raise ConfigurationError(
                f"IVRMenu {name!r}: options must be a dict of keys to targets, such as "
                f"{{'1': 'sales', '2': 'support'}}, got {type(options).__name__}"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(
                f"IVRMenu {name!r}: retries must be a whole number, 0 or more (the prompts "
                f"after the first before the fallback), got {retries!r}"
            )
        if (
            isinstance(min_confidence, bool)
            or not isinstance(min_confidence, (int, float))
            or not 0 <= min_confidence <= 1
        ):
            raise ConfigurationError(
                f"IVRMenu {name!r}: min_confidence must be a number from 0 to 1 (the "
                f"SpeechConfidenceScore below which speech is not acted on), got "
                f"{min_confidence!r}"
            )
        self.min_confidence = float(min_confidence)
        self.flow = flow
        self.name = name
        self.prompt = prompt
        self.options: dict[str, Option] = {
            key: opt if isinstance(opt, Option) else Option(opt) for key, opt in options.items()
        }
        self.retries = retries
        self.no_input_prompt = no_input_prompt
        self.invalid_prompt = invalid_prompt
        if not (isinstance(fallback, str) or callable(fallback)):
            # Refused when made, not at mount: None here is no 'default' (omit fallback=).
            raise ConfigurationError(
                f"IVRMenu {name!r}: fallback must be a route name or a handler, got "
                f"{shown(fallback)} (leave it out for the default goodbye)"
            )
        self.fallback = fallback
        has_phrases = any(o.phrases for o in self.options.values())
        self.input_type = input_type or ("dtmf speech" if has_phrases else "dtmf")
        self.execution_timeout = execution_timeout
        self.voice = voice
        self.language = language
        #: The Gather's recognition language (default: ``language``); the two lists
        #: differ (spec §1.2), as a voice for es-MX speech may be es-US.
        self.speech_language = speech_language or language
        # Normalised as speech is in match(): " Sales " (or "Sales.") must match "sales".
        self._phrases = {
            _words(phrase): opt for opt in self.options.values() for phrase in opt.phrases
        }
        # Whether speech that says a key picks it (see match): keys offered (dtmf), and no
        # phrase with a number in it.
        self._keys_by_speech = "dtmf" in str(self.input_type) and not any(
            w in _KEY_WORDS or any(ch.isdigit() for ch in w)
            for phrase in self._phrases
            for w in phrase.split()
        )
        self._validate_shape()
        self._check_elements()
        self.choice_route = f"{name}_choice"
        flow.add_route(f"/{name}", self._entry, name=name)
        flow.add_route(f"/{name}/choice", self._choice, name=self.choice_route)
        flow._inner_paths.add(f"/{name}/choice")  # the menu's Gather action, not an entry
        flow._recipe_paths.update((f"/{name}", f"/{name}/choice"))
        hold_targets(flow, [*(o.target for o in self.options.values()), self.fallback])
        flow.add_check(self._validate_targets)
        # A caller who never answers reaches the fallback from either route (a Redirect to
        # the choice route with no input starts the menu again, as the menu itself does).
        passes_on(flow, name, (name, self.choice_route), fallback)

    # -- routes -----------------------------------------------------------------------

    def _entry(self, call: CallRequest) -> Response:
        return self.prompt_document(_attempt(call), call.query.get("reason"))

    def _choice(self, call: CallRequest) -> Response | None:
        attempt = _attempt(call)
        speech, confidence = call.speech, call.speech_confidence
        if speech and confidence is not None and confidence < self.min_confidence:
            # Spec §1.2: threshold SpeechConfidenceScore before acting on the speech; heard
            # but not understood well enough, it is an invalid choice, re-prompted.
            speech = None
        option = self.match(call.digits, speech)
        if option is not None:
            return self._go(option.target, call)
        reason = "no-input" if not (call.digits or call.speech) else "invalid"
        if attempt >= self.retries:
            return self._go(self.fallback, call)
        return self.prompt_document(attempt + 1, reason)

    # -- building blocks ----------------------------------------------------------------

    def match(self, digits: str | None, speech: str | None) -> Option | None:
        """The option the caller picked with ``digits`` or ``speech``, if any."""
        if digits and digits in self.options:
            return self.options[digits]
        if speech:
            said = _words(speech)
            if said in self._phrases:
                return self._phrases[said]
            # Whole words only, so "no" is not heard in "I don't know"; the longest phrase
            # first, so "new account" wins over "account" in "a new account please".
            # Korean: also at the start of a word, where particles attach ("영업" in
            # "영업부로"). A phrase in a script without spaces ("営業" in "営業部をお願い
            # します") matches inside the speech, between characters of such a script.
            padded = f" {said} "
            for phrase in sorted(self._phrases, key=len, reverse=True):
                if phrase and (
                    f" {phrase} " in padded
                    or (_in_script(phrase, _HANGUL) and f" {phrase}" in padded)
                    or (_in_script(phrase, _UNSPACED) and _inside(phrase, said))
                ):
                    return self._phrases[phrase]
            # The key itself, said ("two", "option 2", "press one two"): a prompt says
            # "press 2 or say support", and callers say the number as often as the word.
            # Not where keys are never offered (speech alone), nor where a phrase has a
            # number in it ("two tickets"): "two" could be either.
            if self._keys_by_speech:
                return self.options.get(_said_key(said) or "")
        return None

    def prompt_document(self, attempt: int = 0, reason: str | None = None) -> Response:
        """The menu's Gather document for this attempt (with the re-prompt reason)."""
        lead = {"no-input": self.no_input_prompt, "invalid": self.invalid_prompt}.get(reason or "")
        texts = [lead, self.prompt] if lead else [self.prompt]
        prompts = [Speak(text, voice=self.voice, language=self.language) for text in texts]
        gather = self._gather(prompts, self.flow.url_for(self.choice_route, attempt=attempt))
        if attempt >= self.retries:
            after = Redirect(self.flow.url_for(self.choice_route, attempt=attempt))
        else:
            after = Redirect(self.flow.url_for(self.name, attempt=attempt + 1, reason="no-input"))
        return Response(gather, after)

    def _gather(self, prompts: list[Speak], action: str) -> Gather:
        gather_kw: dict[str, object] = {}
        if self._phrases:
            gather_kw["hints"] = ",".join(
                phrase.strip() for option in self.options.values() for phrase in option.phrases
            )
        if self.speech_language and "speech" in str(self.input_type):
            gather_kw["language"] = self.speech_language
        if any("#" in key for key in self.options):
            # '#' ends the input by default and is left out of Digits (spec §1.2), so an
            # option '#' could never be chosen; num_digits still ends the input.
            gather_kw["finish_on_key"] = "none"
        return Gather(
            *prompts,
            action=action,
            input_type=self.input_type,
            num_digits=max(len(k) for k in self.options),
            execution_timeout=self.execution_timeout,
            **gather_kw,  # type: ignore[arg-type]
        )

    def _check_elements(self) -> None:
        """Build the menu's elements once now: a voice, language, input type or timeout
        the elements refuse would otherwise fail on every call (each caller hearing the
        flow's fallback)."""
        where = f"IVRMenu {self.name!r}"
        prompts: list[Speak] = []
        for field, text in (
            ("prompt", self.prompt),
            ("no_input_prompt", self.no_input_prompt),
            ("invalid_prompt", self.invalid_prompt),
        ):
            if not text and field != "prompt":
                continue  # no lead before the re-prompt: the prompt alone is said again
            try:
                prompts.append(Speak(text, voice=self.voice, language=self.language))
            except ElementError as exc:
                hint = ""
                if exc.attribute == "language" and self._recognises(self.language):
                    hint = (
                        f"; {self.language!r} is a speech recognition language but no voice "
                        f"speaks it: pass language= a voice language (such as 'es-US') and "
                        f"speech_language={self.language!r}"
                    )
                raise ConfigurationError(
                    f"{where}: its {field} (with voice= and language=) makes no valid "
                    f"Speak: {exc}{hint}"
                ) from exc
        try:
            self._gather(prompts[:1], "https://menu.invalid/choice")
        except ElementError as exc:
            raise ConfigurationError(
                f"{where}: input_type=, execution_timeout= and speech_language= make no "
                f"valid Gather: {exc}"
            ) from exc
        english = {"Sorry, we did not get your choice.", "Sorry, that is not a valid choice."}
        speaks = self.language or (self.voice if self.voice and "-" in self.voice else "")
        if (
            speaks
            and not speaks.lower().startswith("en")
            and ({self.no_input_prompt, self.invalid_prompt} & english or self.fallback is _goodbye)
        ):
            log.warning(
                "%s: language %r, but its re-prompts or its goodbye are the English "
                "defaults; pass no_input_prompt=, invalid_prompt= and fallback= in the "
                "menu's language",
                where,
                speaks,
            )

    @staticmethod
    def _recognises(language: str | None) -> bool:
        try:
            Gather(action="https://menu.invalid/", input_type="speech", language=language)
        except ElementError:
            return False
        return True

    def _go(self, target: Target, call: CallRequest) -> Response | None:
        if isinstance(target, str):
            return Response(Redirect(self.flow.url_for(target)))
        return answered(target(call), f"IVRMenu {self.name!r}", target, call)

    # -- validation ---------------------------------------------------------------------

    def __repr__(self) -> str:
        keys = "".join(self.options)
        return (
            f"IVRMenu(flow={self.flow.name!r}, name={self.name!r}, keys={keys!r}, "
            f"retries={self.retries})"
        )

    def _validate_shape(self) -> None:
        where = f"IVRMenu {self.name!r}"
        if not self.options:
            raise ConfigurationError(f"{where}: give at least one option")
        for key in self.options:
            if not isinstance(key, str):
                # Checked first: the key checks below would fail on an int with a TypeError.
                raise ConfigurationError(
                    f"{where}: option key {key!r} must be a string of keypad keys, "
                    f"such as {str(key)!r}"
                )
            if not key or any(ch not in VALID_KEYS for ch in key) or len(key) > 32:
                raise ConfigurationError(
                    f"{where}: option key {key!r} must be keypad keys 0-9, * or #"
                )
        lengths = {len(k) for k in self.options}
        if len(lengths) > 1:
            raise ConfigurationError(
                f"{where}: option keys must all have the same length (got {sorted(self.options)})"
                " so that the menu knows when the caller has finished"
            )
        phrases = [p.strip() for o in self.options.values() for p in o.phrases]
        if len(phrases) > MAX_HINTS or len(",".join(phrases)) > MAX_HINTS_CHARS:
            raise ConfigurationError(
                f"{where}: {len(phrases)} phrases of {len(','.join(phrases))} characters in "
                f"all; the Gather hints allow at most {MAX_HINTS} phrases and "
                f"{MAX_HINTS_CHARS} characters"
            )
        seen: dict[str, tuple[str, str]] = {}
        for key, option in self.options.items():
            for phrase in option.phrases:
                p = _words(phrase)
                if "," in phrase or not 1 <= len(phrase.strip()) <= 100:
                    raise ConfigurationError(
                        f"{where}: phrase {phrase!r} must be 1-100 characters without commas"
                    )
                if not p:
                    raise ConfigurationError(
                        f"{where}: phrase {phrase!r} has no letters or digits, so no "
                        "recognised speech can match it"
                    )
                if p in seen:
                    other_key, other = seen[p]
                    raise ConfigurationError(
                        f"{where}: phrase {phrase!r} of option {key} is the same words as "
                        + (
                            f"its phrase {other!r}"
                            if other_key == key
                            else f"phrase {other!r} of option {other_key}"
                        )
                        + " (case and punctuation aside): keep one"
                    )
                seen[p] = (key, phrase)
        # (An input_type that is no text is refused with the Gather, in _check_elements.)
        types = self.input_type.split() if isinstance(self.input_type, str) else []
        speech, dtmf = "speech" in types, "dtmf" in types
        for key, option in self.options.items():
            if speech and not dtmf and not option.phrases:
                raise ConfigurationError(
                    f"{where}: option {key} has no phrases, and input_type="
                    f"{self.input_type!r} takes no keys: no caller could choose it"
                )
            if dtmf and not speech and option.phrases:
                raise ConfigurationError(
                    f"{where}: option {key} has phrases, and input_type={self.input_type!r} "
                    "hears no speech: use input_type='dtmf speech', or drop the phrases"
                )
        if not 0 <= self.retries <= 10:
            raise ConfigurationError(f"{where}: retries must be 0-10, got {self.retries}")

    def _validate_targets(self, flow: CallFlow) -> None:
        # Every prompt carries the Gather action's URL: without a public URL each call
        # would hear only the fallback, so the menu fails when mounted instead.
        try:
            flow.url_for(self.choice_route)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"IVRMenu {self.name!r} cannot build its URLs: {exc}"
            ) from None
        targets: Sequence[tuple[str, Target]] = [
            *((f"option {k}", o.target) for k, o in self.options.items()),
            ("fallback", self.fallback),
        ]
        where = f"IVRMenu {self.name!r}"
        for label, target in targets:
            if isinstance(target, str):
                check_target(flow, where, label, target)
            elif not callable(target):
                raise ConfigurationError(
                    f"{where}: {label} must be a route name or a handler, got {shown(target)}"
                )
        check_no_loop(flow, where, self.name)


def _attempt(call: CallRequest) -> int:
    try:
        return max(0, int(call.query.get("attempt", "0")))
    except ValueError:
        return 0


# English number words for keypad keys, and the words said around a key ("option two").
_KEY_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "star": "*", "hash": "#",
    "pound": "#",
}  # fmt: skip
_AROUND_KEY = frozenset(("option", "press", "number", "key", "please", "the", "i", "pressed"))


def _said_key(said: str) -> str | None:
    """The keypad key ``said`` (in :func:`_words`' form) names, if it says only a key:
    digits or English number words, with words such as "option" or "press" around them."""
    keys = [_KEY_WORDS.get(w, w) for w in said.split() if w not in _AROUND_KEY]
    if not keys or not all(k.isdecimal() or k in ("*", "#") for k in keys):
        return None
    # Any script's digits as the keypad's ("२" is "2"), as a recogniser may write them.
    return "".join(
        k if k in ("*", "#") else "".join(str(unicodedata.decimal(ch)) for ch in k) for k in keys
    )


def _words(text: str) -> str:
    """``text`` as lowercase words split by single spaces, punctuation dropped.

    Recognised speech comes capitalised and punctuated ("Sales, please."), and a phrase
    may be written the same way; both are compared in this form. NFKC first, so an accent
    typed as a combining mark (NFD) or a full-width letter compares equal to its composed
    form; combining marks (Indic vowel signs, Thai tone marks, Arabic diacritics) are
    part of their word, not breaks in it ("मुझे" is one word, not "म झ").
    """
    folded = unicodedata.normalize("NFKC", text.casefold()).translate(_APOSTROPHES)
    folded = folded.translate(_DROPPED)
    spaced = "".join(ch if _word_char(ch) else " " for ch in folded)
    # An apostrophe inside a word only: 'sales' in quotes is the word sales.
    return " ".join(word for word in (w.strip("'") for w in spaced.split()) if word)


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "'" or unicodedata.category(ch).startswith("M")


def _in_script(text: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    """Whether ``text`` has a character of one of the code point ``ranges``."""
    return any(lo <= ord(ch) <= hi for ch in text for lo, hi in ranges)


def _inside(phrase: str, said: str) -> bool:
    """Whether ``phrase`` occurs in ``said`` where a word of a script without spaces may
    begin and end: each side of the match is a space, an end of the text, or a character
    of such a script, and never a numeral beside a numeral of the phrase. So "1番" is not
    in "11番", "SIMカード" not in "eSIMカード", "一" not in "十一", "๑" not in "๑๐"."""
    start = said.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        left = said[start - 1] if start else " "
        right = said[end] if end < len(said) else " "
        if _may_adjoin(left, phrase[0]) and _may_adjoin(right, phrase[-1]):
            return True
        start = said.find(phrase, start + 1)
    return False


def _may_adjoin(neighbour: str, edge: str) -> bool:
    if neighbour == " ":
        return True
    return _in_script(neighbour, _UNSPACED) and not (neighbour.isnumeric() and edge.isnumeric())
