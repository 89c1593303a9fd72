"""Property tests: whatever goes in, answerkit either refuses it or emits XML that parses back."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from answerkit.elements import (
    DTMF,
    Conference,
    Dial,
    Element,
    Gather,
    Hangup,
    Number,
    Play,
    PreAnswer,
    Record,
    Redirect,
    Response,
    Speak,
    Stream,
    User,
    Wait,
)
from answerkit.errors import ElementError
from answerkit.parse import parse, parse_full
from answerkit.ssml import SPEAK_SSML, Break, Emphasis, Prosody, SayAs, Sub

BASE: dict[type[Element], tuple[Any, ...]] = {
    Speak: ("Hello",),
    Play: ("https://cdn.example.com/a.mp3",),
    Wait: (),
    Gather: (),
    Dial: (Number("+14156667890"),),
    Number: ("+14156667890",),
    User: ("sip:agent@example.com",),
    Record: (),
    Conference: ("room",),
    Redirect: ("https://example.com/next",),
    Hangup: (),
    DTMF: ("12#",),
    Stream: ("wss://stream.example.com/ws",),
}
PAIRS = [(cls, py) for cls in BASE for py in cls._table]
TEXT_ELEMENTS = [Speak, Play, Number, User, Conference, Redirect, DTMF, Stream, Dial]

# Values of every shape an attribute might be handed: near-misses of the valid ones included.
NEAR = st.sampled_from(
    [
        "", " ", "true", "false", "True", "GET", "POST", "get", "dtmf", "speech", "dtmf speech",
        "auto", "0", "1", "10", "32", "33", "-1", "#", "*", "none", "12#", "1w2W", "+14155551234",
        "14155551234", "https://example.com/a?b=1&c=2", "http://example.com", "wss://a.b/c",
        "https://a.b/{{x}}", "real", "beep:1", "a=1,b=2", "a=1,,b", "en-US", "hi-IN", "WOMAN",
        "MAN", "Polly.Amy", "mp3", "wav", "inbound", "both", "audio/x-l16;rate=8000", "rejected",
        'a"b<c>&d', "x" * 600,
    ]
)  # fmt: skip
VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-5, max_value=100_000),
    st.text(max_size=40),
    NEAR,
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.none(),
)


def document(el: Element) -> Response:
    if isinstance(el, (Number, User)):
        return Response(Dial(el))
    return Response(el)


def check_output(doc: Response) -> None:
    """The output parses with plain lxml, and answerkit reads back the same document (by
    its reader of to_xml's own output and by the full parser alike)."""
    xml = doc.to_xml()
    etree.fromstring(xml.encode("utf-8"))
    assert parse(xml) == doc
    assert parse_full(xml.encode()) == doc
    assert parse(doc.to_xml(pretty=True)) == doc


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_round_trips_through_speak(text: str) -> None:
    try:
        speak = Speak(text)
    except ElementError:
        assert not text.strip() or any(
            not (
                c in "\t\n\r"
                or "\x20" <= c <= "\ud7ff"
                or "\ue000" <= c <= "\ufffd"
                or c > "\uffff"
            )
            for c in text
        )
        return
    doc = Response(speak)
    tree = etree.fromstring(doc.to_bytes())
    assert speak.text == text.strip()  # trimmed (spec §1.0)
    assert tree[0].text == text.strip()
    assert parse(doc.to_xml()).children[0].text == text.strip()
    check_output(doc)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PAIRS), VALUES)
def test_any_attribute_value_validates_or_raises(
    pair: tuple[type[Element], str], value: Any
) -> None:
    cls, py = pair
    try:
        el = cls(*BASE[cls], **{py: value})
    except ElementError:
        return
    xml_name = cls._table[py].xml
    if value is None:  # not given: not rendered
        assert xml_name not in el.attrs
        return
    rendered = el.attrs[xml_name]
    assert el.get(py) == rendered
    try:
        doc = document(el)
        xml = doc.to_xml()
    except ElementError:
        return  # a document rule (Gather action, Stream, Wait): refused, never emitted
    tree = etree.fromstring(xml.encode("utf-8"))
    node = tree.find(".//" + cls.tag)
    assert node is not None
    assert node.get(xml_name) == rendered
    check_output(doc)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(TEXT_ELEMENTS), st.one_of(st.text(), NEAR, st.integers()))
def test_any_text_content_validates_or_raises(cls: type[Element], text: Any) -> None:
    try:
        el = cls(text)
    except ElementError:
        return
    assert isinstance(el.text, str)
    assert el.text.strip() or cls is Speak
    check_output(document(el))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20), st.sampled_from(["500ms", "1s", "10s"]))
def test_ssml_mixed_with_text_round_trips(a: str, b: str, pause: str) -> None:
    try:
        speak = Speak(
            a,
            Break(time=pause),
            Emphasis(b, level="strong"),
            SayAs("123", interpret_as="digits"),
            Prosody(Sub("W3C", alias="World Wide Web"), rate="slow"),
            a,
        )
    except ElementError:
        return
    # The first and last strings are trimmed at their outer ends (spec §1.0).
    assert speak.text == a.lstrip() + b + "123W3C" + a.rstrip()
    check_output(Response(speak))


SAFE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=15,
).filter(str.strip)
ELEMENT = st.one_of(
    st.builds(Speak, SAFE, loop=st.none() | st.integers(0, 3)),
    st.builds(Play, st.just("https://cdn.example.com/a.mp3")),
    st.builds(Wait, length=st.none() | st.integers(1, 5), beep=st.none() | st.booleans()),
    st.builds(
        lambda kids, n: Gather(*kids, action="https://a.b/g", input_type="dtmf", num_digits=n),
        st.lists(st.builds(Speak, SAFE), max_size=2),
        st.integers(1, 32),
    ),
    st.builds(
        lambda nums: Dial(*[Number(n) for n in nums], caller_id="+14155551234"),
        st.lists(st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True), min_size=1, max_size=3),
    ),
    st.builds(Conference, SAFE, stay_alone=st.booleans()),
    st.builds(DTMF, st.from_regex(r"[0-9*#wW]{1,8}", fullmatch=True)),
    st.builds(Record, record_session=st.none() | st.booleans()),
)
TAIL = st.sampled_from([None, Hangup(), Redirect("https://a.b/next")])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(ELEMENT, max_size=6), TAIL)
def test_any_built_document_round_trips(
    early: bool, body: list[Element], tail: Element | None
) -> None:
    kids: list[Any] = [PreAnswer(Speak("early"))] if early else []
    kids += body
    if tail is not None:
        kids.append(tail)
    try:
        doc = Response(*kids)
        doc.validate()
    except ElementError:
        return
    check_output(doc)
    assert (
        eval(repr(doc), {c.__name__: c for c in (*BASE, Response, PreAnswer, *SPEAK_SSML)}) == doc
    )
