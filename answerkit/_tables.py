"""The attribute tables of VobizXML (spec §1.2), one per element, in the spec's order.

The order of each table is the rendering order. Where the spec lists a contradiction (§6),
the choice made here is written beside the table entry. Also here: what an element's text
may be (TextSpec) and the memo of start tags by the values given (TagMemo).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import NoReturn

from answerkit._attributes import (
    URL,
    Attr,
    Bool,
    EndTimeout,
    Enum,
    Hints,
    Int,
    KeyValues,
    Method,
    Pattern,
    Table,
    Text,
)
from answerkit._xmltext import (
    MEMO_LIMIT,
    MEMO_MAX_LEN,
    TAG_MAX_LEN,
    bad_xml_char,
    check_url,
    describe_bad_char,
    esc_text,
    fast_url,
    remember,
    shown,
    trim,
)
from answerkit.errors import ElementError


class TagMemo:
    """An element's start tag, memoised by the values given for some of its attributes.

    A flow builds the same menus and transfers on every call, so the tag for the same values
    is one lookup. The key is the tuple of the values in table order (None: not given). Equal
    is not the same across types (``1 == True == 1.0``; a str subclass equals its text), so
    only values of exactly the types their attribute takes (``Attr.exact``) enter the memo,
    and a hit counts only for such values: a constructor looks up ``memo`` and tests the types
    itself, and calls ``tag`` otherwise, which checks every value. Bounded like every memo.
    """

    __slots__ = ("attrs", "head", "memo")

    def __init__(self, table: Table, *names: str) -> None:
        self.head = "<" + table.element
        self.attrs: tuple[Attr, ...] = tuple(table[n] for n in names)
        if [a.pos for a in self.attrs] != sorted(a.pos for a in self.attrs):
            raise ValueError("TagMemo: names must be in table (rendering) order")
        self.memo: dict[tuple[object, ...], str] = {}

    def tag(self, values: tuple[object, ...]) -> str:
        """The start tag for ``values`` after the full check of each (memoised if allowed)."""
        s = self.head
        exact = True
        for a, v in zip(self.attrs, values, strict=True):
            if v is not None:
                s += a.frag(v)
                if type(v) not in a.exact:
                    exact = False
        memo = self.memo
        # The key holds the values as given, before trimming: bounded by each value's length
        # (MEMO_MAX_LEN), not only the tag's, or a padded value would pin megabytes.
        if (
            exact
            and len(memo) < MEMO_LIMIT
            and len(s) <= TAG_MAX_LEN
            and all(type(v) is not str or len(v) <= MEMO_MAX_LEN for v in values)
        ):
            memo[values] = s
        return s

    def get(self, values: tuple[object, ...]) -> str:
        """``tag``, with the memo lookup and the type test (for the less common forms)."""
        try:
            hit = self.memo.get(values)
        except TypeError:  # an unhashable value (a list): never in the memo
            return self.tag(values)
        if hit is not None:
            for a, v in zip(self.attrs, values, strict=True):
                if v is not None and type(v) not in a.exact:
                    return self.tag(values)
        return hit or self.tag(values)


_TEXT_PATTERNS = {
    # E.164 as the docs write it: '+', a country code that never starts with 0, 7-15 digits
    # (E.164 sets no minimum; Niue and Saint Helena numbers have 7).
    "e164": re.compile(r"\+[1-9][0-9]{6,14}"),
    "sip": re.compile(r"sip:[^@\s<>\"]+@[^@\s<>\"]+"),
    "dtmf": re.compile(r"[0-9*#wW]+"),
}


class TextSpec:
    """What an element's text content must be; checks and trims it."""

    __slots__ = ("bare", "close", "element", "fast", "kind", "memo", "open", "schemes", "what")

    def __init__(self, element: str, kind: str, what: str, schemes: tuple[str, ...] = ()) -> None:
        self.element = element
        self.kind = kind
        self.what = what
        self.schemes = tuple(s + "://" for s in schemes)
        self.memo: dict[str, tuple[str, str]] = {}  # value -> (checked, escaped)
        #: value -> (checked, "<Tag>escaped</Tag>"): the whole element when it has no
        #: attributes, which is how a Number or a Play is usually written.
        self.bare: dict[str, tuple[str, str]] = {}
        self.open = f"<{element}>"
        self.close = f"</{element}>"
        # A full match of the untrimmed value proves it needs neither trimming nor a message.
        self.fast: Callable[[str], object] = (
            fast_url(schemes)
            if kind == "url"
            else _sip_uri
            if kind == "sip"
            else _TEXT_PATTERNS[kind].fullmatch
            if kind in _TEXT_PATTERNS
            else _plain_text
        )

    def take(self, value: object) -> tuple[str, str]:
        """The checked text and its escaped form (memoised like attribute values)."""
        # Only a plain str is looked up (the memos hold plain strs): anything else, a str
        # subclass included, is checked.
        hit = self.memo.get(value) if type(value) is str else None
        if hit is not None:
            return hit
        if type(value) is str and self.fast(value) is not None:
            # The fast patterns leave nothing to escape (E.164, DTMF) or only '&' (URLs,
            # SIP URIs); plain text may hold any of & < >.
            if self.kind == "text":
                e = esc_text(value)
            elif "&" in value:
                e = value.replace("&", "&amp;")
            else:
                e = value
            return remember(self.memo, value, (value, e))
        v = self.check(value)
        return v, esc_text(v)

    def whole(self, value: object) -> tuple[str, str]:
        """The checked text and the element without attributes: ``<Tag>escaped</Tag>``."""
        hit = self.bare.get(value) if type(value) is str else None
        if hit is None:
            v, e = self.take(value)
            hit = (v, f"{self.open}{e}{self.close}")
            if type(value) is str:
                remember(self.bare, value, hit)
        return hit

    def fail(self, value: object, allowed: str | None = None, hint: str = "") -> NoReturn:
        raise ElementError(
            f"{self.element}: text must be {allowed or self.what}, got {shown(value)}{hint}",
            element=self.element,
            attribute=None,
            value=value,
        )

    def check(self, value: object) -> str:
        """The checked text, trimmed of surrounding whitespace."""
        if type(value) is str and self.fast(value) is not None:
            return value
        if not isinstance(value, str):
            self.fail(value)
        value = str(value)  # a str subclass is kept as plain text
        if self.kind == "url":
            return check_url(self, value, self.schemes)
        v = trim(value)
        if self.kind == "text":
            bad = bad_xml_char(v)
            if bad is not None:
                self.fail(value, f"text XML can carry ({describe_bad_char(v, bad)})")
            if not v:
                self.fail(value)
            return v
        if self.fast(v) is None:
            if self.kind == "e164":
                self.fail(value, hint=_e164_advice(v))
            self.fail(value)
        return v


def _e164_advice(v: str) -> str:
    """What to change in a number that is not E.164 (a typed form, a SIP address)."""
    if v.lower().startswith("sip:"):
        return ": a SIP address is dialled with User('sip:...'), not Number"
    return e164_advice(v)


def e164_advice(number: str) -> str:
    """Advice for a phone number written another way: the E.164 form it stands for when
    that is certain ("+1 (415) 555-0142", "0044 20 7946 0000", "+44 (0)20 ..."), or what
    is missing."""
    form = _TEXT_PATTERNS["e164"]
    kept = re.sub(r"[\s.\-/]", "", number.strip())
    # "(0)" is the trunk prefix written after a country code: dialled from abroad, it
    # is left out ("+44 (0)20" is +4420...).
    kept = kept.replace("(0)", "").replace("(", "").replace(")", "")
    if kept.startswith("00"):
        kept = "+" + kept[2:]  # the international prefix of most countries
    if kept != number and form.fullmatch(kept):
        return f": write it {kept!r} (E.164: '+', the country code, the number, no punctuation)"
    if kept.isdigit():
        return ": add the leading '+' and the country code (E.164: '+', then 7 to 15 digits)"
    return ""


def _sip_uri(v: str) -> object:
    # The pattern leaves out markup and whitespace; isprintable() also keeps out the control
    # characters XML cannot carry.
    return _TEXT_PATTERNS["sip"].fullmatch(v) if v.isprintable() else None


def _plain_text(v: str) -> object:
    # Printable, and neither blank nor needing a trim.
    return v if v.isprintable() and v[:1] not in ("", " ") and v[-1] != " " else None


#: Speak languages: the 16 of the voice table, plus en-IN and hi-IN. Those two are offered by
#: Vobiz's own XML builder but missing from the table (spec §6 item 14); an India-based
#: platform's builder is trusted over the omission.
SPEAK_LANGUAGES = (
    "da-DK", "nl-NL", "en-AU", "en-GB", "en-US", "fr-FR", "fr-CA", "de-DE",
    "it-IT", "pl-PL", "pt-PT", "pt-BR", "ru-RU", "es-ES", "es-US", "sv-SE",
    "en-IN", "hi-IN",
)  # fmt: skip
#: en-IN and hi-IN, the builder's additions: accepted, and flagged by ``lint`` as unverified
#: (spec §6 item 14 names the contradiction but picks no side).
BUILDER_ONLY = frozenset(["en-IN", "hi-IN"])
WOMAN_ONLY = frozenset(["da-DK", "fr-CA", "ru-RU", "sv-SE"])
MAN_ONLY = frozenset(["pt-PT"])

#: Gather languages the fork SDK allows; only advice (lint), never an error (spec §1.2).
GATHER_LANGUAGES = frozenset([
    "en-AU", "en-CA", "en-GB", "en-IE", "en-IN", "en-PH", "en-SG", "en-US", "en-ZA",
    "de-DE", "es-ES", "es-MX", "es-US", "fr-CA", "fr-FR", "it-IT", "ja-JP", "ko-KR",
    "nl-NL", "pt-BR", "pt-PT", "ru-RU", "zh", "cmn-hans-cn", "zh-HK", "zh-TW",
    "cmn-hans-tw", "yue-Hant-HK", "af-ZA", "hi-IN",
])  # fmt: skip

_KEYS_09 = "one of 0-9, '*', '#'"
_E164_LOOSE = r"\+?[1-9][0-9]{6,14}"
_DIGITS_MATCH = r"[0-9*#]+(?:,[0-9*#]+)*"
_DM_WHAT = "comma-separated digit patterns of 0-9, '*', '#'"


def _send_digits() -> Pattern:
    # Spec §1.2 Number: digits plus 'w' (0.5 s); 'W' (1 s) and '@ms' are the make-call
    # API's only, which the DTMF element's note says Vobiz may ignore in XML.
    return Pattern(
        "send_digits",
        r"[0-9*#w]+",
        "DTMF digits: 0-9, '*', '#' and 'w' for a 0.5 s pause ('W' and '@ms' are the "
        "make-call API's only: write 'ww' for a 1 s pause)",
    )


def _sip_headers() -> KeyValues:
    # Spec §6 item 4: keys are written as given (Vobiz adds the X-VH- prefix); both the
    # plain form (Reason=billing) and the sip-headers page's suffix form (ReasonX-VH=billing)
    # pass; values are [A-Za-z0-9] only (VO).
    return KeyValues("sip_headers", r"[A-Za-z0-9]+(?:X-VH)?", "[A-Za-z0-9] keys and values")


SPEAK = Table(
    "Speak",
    # Spec §6 item 14: only the documented WOMAN/MAN; the Polly.* names appear in one SSML
    # example only, and an unsupported voice would fail on a live call.
    Enum("voice", ("WOMAN", "MAN")),
    Enum("language", SPEAK_LANGUAGES),
    Int("loop", 0),
)
PLAY = Table("Play", Int("loop", 0))
WAIT = Table("Wait", Int("length", 1), Bool("silence"), Int("min_silence", 1), Bool("beep"))
GATHER = Table(
    "Gather",
    URL("action"),
    Method("method"),
    Enum("input_type", ("dtmf", "speech", "dtmf speech")),
    Int("execution_timeout", 5, 60),
    EndTimeout("digit_end_timeout"),
    EndTimeout("speech_end_timeout"),
    Pattern("finish_on_key", r"[0-9*#]?|none", f"{_KEYS_09}, '' or 'none'"),
    Int("num_digits", 1, 32),
    Enum("speech_model", ("default", "command_and_search", "phone_call", "telephony")),
    Hints("hints"),
    Pattern("language", r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*", "a language tag such as 'en-US'"),
    URL("interim_speech_results_callback"),
    Method("interim_speech_results_callback_method"),
    Bool("log"),
    Bool("redirect"),
    Bool("profanity_filter"),
)
DIAL = Table(
    "Dial",
    URL("action"),
    Method("method"),
    URL("callback_url"),
    Method("callback_method"),
    Bool("redirect"),
    Pattern("caller_id", _E164_LOOSE, "an E.164 number such as '+14155551234'", advice=e164_advice),
    Text("caller_name", 50),
    Int("timeout", 1),
    Int("time_limit", 1),
    Bool("hangup_on_star"),
    URL("dial_music", extra=("real",)),
    URL("confirm_sound"),
    Pattern("confirm_key", r"[0-9*#]", _KEYS_09),
    Int("confirm_timeout", 1),
    Pattern("digits_match", _DIGITS_MATCH, _DM_WHAT),
    Pattern("digits_match_b_leg", _DIGITS_MATCH, _DM_WHAT),
    _sip_headers(),
)
NUMBER = Table("Number", _send_digits(), Bool("send_on_preanswer"))
USER = Table("User", _send_digits(), Bool("send_on_preanswer"), _sip_headers())
RECORD = Table(
    "Record",
    URL("action"),
    Method("method"),
    Enum("file_format", ("mp3", "wav")),
    Bool("redirect"),
    Int("timeout", 1),
    Int("max_length", 1),
    Bool("play_beep"),
    Pattern(
        "finish_on_key",
        # The length first: the backreference alone took quadratic time on a long value
        # (4 s for a 90 KB document's), and no set of the 12 keys is longer.
        r"(?=[0-9*#]{0,12}\Z)(?!.*(.).*\1)[0-9*#]*",
        "any set of the keys 1234567890*# (each at most once), or ''",
    ),
    Bool("record_session"),
    Bool("start_on_dial_answer"),
    Enum("transcription_type", ("auto", "hybrid")),
    URL("transcription_url"),
    Method("transcription_method"),
    URL("callback_url"),
    Method("callback_method"),
)
_SOUND = ("", "beep:1", "beep:2")
CONFERENCE = Table(
    "Conference",
    Bool("muted"),
    Bool("beep"),
    Bool("start_conference_on_enter"),
    Bool("end_conference_on_exit"),
    Int("max_participants", 1),
    Bool("stay_alone"),
    URL("enter_sound", extra=_SOUND),
    URL("exit_sound", extra=_SOUND),
    Bool("relay_dtmf", xml="relayDTMF"),
    Pattern("digits_match", _DIGITS_MATCH, _DM_WHAT),
    Bool("hangup_on_star"),
    URL("wait_sound"),
    Method("wait_method"),
    URL("callback_url"),
    Method("callback_method"),
    Bool("record"),
    Enum("record_file_format", ("mp3", "wav")),
    Int("time_limit", 1),
    URL("action"),
    Method("method"),
)
REDIRECT = Table("Redirect", Method("method"))
HANGUP = Table("Hangup", Enum("reason", ("rejected", "busy")), Int("schedule", 1))
DTMF = Table("DTMF", Bool("async_"))
STREAM = Table(
    "Stream",
    Bool("bidirectional"),
    Enum("audio_track", ("inbound", "outbound", "both")),
    Int("stream_timeout", 1),
    URL("status_callback_url"),
    Method("status_callback_method"),
    Enum(
        "content_type",
        ("audio/x-l16;rate=8000", "audio/x-l16;rate=16000", "audio/x-mulaw;rate=8000"),
    ),
    # Spec §6 item 16: the table says [A-Za-z0-9]; one example uses '_'. The table wins.
    KeyValues("extra_headers", "[A-Za-z0-9]+", "[A-Za-z0-9] keys and values", maxbytes=512),
    Int("max_retries", 0, 10),
    Bool("keep_call_alive"),
)
EMPTY = Table("Response")
PREANSWER = Table("PreAnswer")

#: Attribute names from Plivo/TwiML that people carry over, and what to write instead.
RENAMED = {
    ("Gather", "timeout"): "execution_timeout (executionTimeout)",
    ("Gather", "type"): "input_type (inputType)",
    ("Gather", "input"): "input_type (inputType)",
    ("Gather", "digitTimeout"): "digit_end_timeout (digitEndTimeout)",
    ("Conference", "maxMembers"): (
        "max_participants (maxParticipants), which Vobiz parses but does not enforce: the "
        "account's cap wins (spec §1.2)"
    ),
    ("Play", "digits"): "the DTMF element",
}

#: Attribute names the spec lists as Plivo's and not VobizXML, with no VobizXML replacement
#: (spec §1.2). The parser names them as such: the nearest known name would be wrong advice
#: (validDigits is not numDigits, transcriptionReportType not transcriptionType).
_GATHER_LEGACY = "a legacy Plivo attribute, not in Vobiz's Gather table (spec §1.2)"
_CONFERENCE_PLIVO = "Plivo's; Vobiz does not document it for Conference (spec §1.2)"
_RECORD_PLIVO = "from Plivo's SDK builders; not in the Vobiz XML docs (spec §1.2)"
NOT_VOBIZ = {
    ("Gather", "playBeep"): _GATHER_LEGACY,
    ("Gather", "retries"): (
        f"{_GATHER_LEGACY}: re-prompt with a Redirect back to the menu after the Gather, "
        "or use IVRMenu(retries=...)"
    ),
    ("Gather", "validDigits"): (
        f"{_GATHER_LEGACY}: check call.digits in the action's handler, or use "
        "IVRMenu(options=...)"
    ),
    ("Gather", "invalidDigitsSound"): (
        f"{_GATHER_LEGACY}: answer an invalid call.digits from the action's handler, or use "
        "IVRMenu(invalid_prompt=...)"
    ),
    **{("Conference", n): _CONFERENCE_PLIVO for n in (
        "floorEvent", "redirect", "recordWhenAlone", "sendDigits", "transcriptionType",
        "transcriptionUrl", "transcriptionMethod",
    )},
    ("Record", "transcriptionReportType"): _RECORD_PLIVO,
    ("Record", "recordChannelType"): _RECORD_PLIVO,
    ("Number", "sendDigitsMode"): "Plivo's; Vobiz does not document it (spec §1.2)",
    # Spec §6 item 5: one comparison page lists sipHeaders on Number, the Number page does not.
    # The element page is trusted (§ How to read this); Dial and User take sip_headers.
    ("Number", "sipHeaders"): (
        "listed on one comparison page only, not on the Number page (spec §6 item 5); "
        "set sip_headers on the Dial, or dial a User"
    ),
}  # fmt: skip


def foreign_attribute(tag: str, name: str, table: Table, *, keyword: bool = False) -> str:
    """Why ``name`` is no attribute of ``tag``, and what to write instead: the VobizXML
    replacement of a Plivo or TwiML name, the Python name of an XML name (``keyword``:
    given as a constructor keyword, where snake_case Plivo names count too), or the
    nearest known name."""
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
    renamed = RENAMED.get((tag, name)) or RENAMED.get((tag, camel))
    if renamed is not None:
        if tag == "Gather" and camel == "timeout":
            return (
                "Gather: there is no timeout attribute on Gather (it is Plivo's GetDigits); "
                f"use {renamed}"
            )
        return f"{tag}: {name} is not VobizXML; use {renamed}"
    why = NOT_VOBIZ.get((tag, name)) or NOT_VOBIZ.get((tag, camel))
    if why is not None:
        return f"{tag}: {name} is not VobizXML ({why}); leave it out"
    if keyword:
        spelt = table.by_xml.get(name)
        if spelt is not None:
            return f"{tag}: write the attribute {name} as the keyword {spelt.py}="
        known = list(table)
    else:
        known = list(table.by_xml)
    close = difflib.get_close_matches(name, known, n=1)
    also = f"; did you mean {close[0]}{'=' if keyword else ''}?" if close else ""
    listing = ", ".join(known) if known else "none"
    return f"{tag}: unknown attribute {name!r}{also} (known: {listing})"


def not_vobiz(tag: str, table: Table, given: Mapping[str, object]) -> TypeError:
    """The TypeError for keywords an element constructor does not take (as Python's own,
    with the advice of :func:`foreign_attribute`)."""
    name = next(iter(given))
    return TypeError(
        f"{tag}() got an unexpected keyword argument {name!r}: "
        f"{foreign_attribute(tag, name, table, keyword=True)}"
    )


TEXTS = {
    "Speak": TextSpec("Speak", "text", "non-blank text (or SSML)"),
    "Play": TextSpec("Play", "url", "an absolute https:// or http:// URL", ("https", "http")),
    "Number": TextSpec("Number", "e164", "an E.164 number such as '+14156667890'"),
    "User": TextSpec("User", "sip", "a SIP URI such as 'sip:agent@example.com'"),
    "Conference": TextSpec("Conference", "text", "a non-blank room name"),
    "Redirect": TextSpec(
        "Redirect", "url", "an absolute https:// or http:// URL", ("https", "http")
    ),
    "DTMF": TextSpec("DTMF", "dtmf", "DTMF digits: 0-9, '*', '#', 'w', 'W'"),
    "Stream": TextSpec("Stream", "url", "an absolute wss:// or ws:// URL", ("wss", "ws")),
    "Dial": TextSpec("Dial", "e164", "one E.164 number such as '+14156667890'"),
}
