"""The VobizXML vocabulary: construction, checks, document rules, rendering, SSML.

Lint and the query helpers: tests/test_lint_query.py; the memos and fast paths of the
constructors: tests/test_element_memos.py."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
from lxml import etree

from answerkit._attributes import (
    URL,
    Bool,
    EndTimeout,
    Enum,
    Hints,
    Int,
    KeyValues,
    Method,
    Pattern,
    Text,
)
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
from answerkit.errors import ElementError, ParseError
from answerkit.parse import parse
from answerkit.ssml import Break, Emphasis, Lang, P, Phoneme, Prosody, S, SayAs, Sub, W

DECL = '<?xml version="1.0" encoding="UTF-8"?>'
URL_A = "https://example.com/menu?step=1&lang=en"

#: Every element with the positional arguments it needs.
BASE: dict[type[Element], tuple[Any, ...]] = {
    Response: (),
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
    PreAnswer: (),
    DTMF: ("12#",),
    Stream: ("wss://stream.example.com/ws",),
}
TABLES = {cls: cls._table for cls in BASE}

#: Sample values for attributes whose kind alone does not say what is valid.
SAMPLES: dict[str, object] = {
    "send_digits": "12w3ww#",
    "caller_id": "+14155551234",
    "confirm_key": "#",
    "digits_match": "12,3*",
    "digits_match_b_leg": "9#",
    "finish_on_key": "#",
    "language": "en-GB",
}


def sample(attr: object) -> object:
    """A valid Python value for an attribute, from its kind."""
    py = getattr(attr, "py", "")
    if py in SAMPLES:
        return SAMPLES[py]
    if isinstance(attr, Bool):
        return True
    if isinstance(attr, Int):
        return attr.lo + 1 if attr.hi > attr.lo else attr.lo
    if isinstance(attr, Enum):
        return attr.choices[-1]
    if isinstance(attr, URL):
        return URL_A
    if isinstance(attr, EndTimeout):
        return 3
    if isinstance(attr, Hints):
        return "yes,no"
    if isinstance(attr, KeyValues):
        return "Reason=billing"
    if isinstance(attr, Text):
        return 'Acme & "Co"'
    raise AssertionError(f"no sample for {py}")


def doc_of(el: Element) -> Response:
    """A valid document holding ``el``."""
    if isinstance(el, (Number, User)):
        return Response(Dial(el))
    if isinstance(el, Response):
        return el
    return Response(el)


# --- golden documents ---------------------------------------------------------------------------


def test_transfer_document_from_the_spec() -> None:
    doc = Response(
        Speak("Please hold while we transfer your call."),
        Dial(Number("+14156667890"), caller_id="+14155551234"),
    )
    assert doc.to_xml() == (
        DECL + "<Response><Speak>Please hold while we transfer your call.</Speak>"
        '<Dial callerId="+14155551234"><Number>+14156667890</Number></Dial></Response>'
    )


def test_ivr_document() -> None:
    doc = Response(
        Speak("Welcome to Acme."),
        Gather(
            Speak("Press 1 for sales, 2 for support."),
            action=URL_A,
            input_type="dtmf",
            num_digits=1,
        ),
        Speak("We did not get your input."),
        Hangup(),
    )
    assert doc.to_xml() == (
        DECL + "<Response><Speak>Welcome to Acme.</Speak>"
        '<Gather action="https://example.com/menu?step=1&amp;lang=en" inputType="dtmf" '
        'numDigits="1"><Speak>Press 1 for sales, 2 for support.</Speak></Gather>'
        "<Speak>We did not get your input.</Speak><Hangup/></Response>"
    )


def test_empty_response_is_valid() -> None:
    assert Response().to_xml() == DECL + "<Response/>"
    assert Response().to_xml(pretty=True) == DECL + "\n<Response/>"


def test_session_recording_before_a_dial() -> None:
    doc = Response(
        Record(action="https://example.com/rec", record_session=True, redirect=False),
        Dial(User("sip:alice1234@registrar.vobiz.ai"), caller_id="+14155551234", timeout=30),
    )
    assert doc.to_xml() == (
        DECL + '<Response><Record action="https://example.com/rec" redirect="false" '
        'recordSession="true"/><Dial callerId="+14155551234" timeout="30">'
        "<User>sip:alice1234@registrar.vobiz.ai</User></Dial></Response>"
    )


def test_warm_transfer_pieces() -> None:
    doc = Response(
        PreAnswer(Speak("Connecting you."), Wait(length=2), Play("https://cdn.example.com/r.wav")),
        Conference("support-42", stay_alone=True, wait_sound="https://example.com/hold"),
        Hangup(),
    )
    assert doc.to_xml() == (
        DECL + '<Response><PreAnswer><Speak>Connecting you.</Speak><Wait length="2"/>'
        "<Play>https://cdn.example.com/r.wav</Play></PreAnswer>"
        '<Conference stayAlone="true" waitSound="https://example.com/hold">support-42'
        "</Conference><Hangup/></Response>"
    )


def test_stream_dtmf_redirect() -> None:
    doc = Response(
        DTMF("1w2W#", async_=False),
        Stream("wss://s.example.com/a", bidirectional=True, keep_call_alive=True, max_retries=3),
        Redirect("https://example.com/next", method="GET"),
    )
    assert doc.to_xml() == (
        DECL + '<Response><DTMF async="false">1w2W#</DTMF><Stream bidirectional="true" '
        'maxRetries="3" keepCallAlive="true">wss://s.example.com/a</Stream>'
        '<Redirect method="GET">https://example.com/next</Redirect></Response>'
    )


# --- every element and attribute ----------------------------------------------------------------


@pytest.mark.parametrize("cls", list(BASE), ids=lambda c: c.__name__)
def test_signature_lists_the_table_in_order(cls: type[Element]) -> None:
    params = inspect.signature(cls).parameters.values()
    keywords = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert keywords == list(TABLES[cls])
    assert all(p.default is None for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


ATTRS = [(cls, py) for cls, table in TABLES.items() for py in table]


@pytest.mark.parametrize(("cls", "py"), ATTRS, ids=[f"{c.__name__}.{p}" for c, p in ATTRS])
def test_each_attribute_renders_camel_case(cls: type[Element], py: str) -> None:
    attr = TABLES[cls][py]
    value = sample(attr)
    # What the document rules need besides the attribute under test.
    needs: dict[str, object] = {
        "Gather": {"action": "https://example.com/g"},
        "Wait": {"length": 5},
        "Stream": {"bidirectional": True},
    }.get(cls.tag, {})  # type: ignore[assignment]
    if py == "audio_track":
        needs = {}
    el = cls(*BASE[cls], **{**needs, py: value})
    rendered = el.attrs[attr.xml]
    assert attr.xml in el.attrs
    assert el.get(py) == el.get(attr.xml) == rendered
    if isinstance(value, bool):
        assert rendered == ("true" if value else "false")
    elif isinstance(value, int):
        assert rendered == str(value)
    xml = doc_of(el).to_xml()
    tree = etree.fromstring(xml.encode())
    node = tree.find(".//" + cls.tag) if cls is not Response else tree
    assert node is not None
    assert node.get(attr.xml) == rendered
    assert parse(xml) == doc_of(el)


@pytest.mark.parametrize("cls", list(BASE), ids=lambda c: c.__name__)
def test_all_attributes_render_in_table_order(cls: type[Element]) -> None:
    table = TABLES[cls]
    values = {py: sample(a) for py, a in table.items()}
    el = cls(*BASE[cls], **dict(reversed(values.items())))
    assert list(el.attrs) == [a.xml for a in table.values()]
    head = str(el).split(">")[0]
    positions = [head.index(f' {a.xml}="') for a in table.values()]
    assert positions == sorted(positions)


def test_camel_case_names() -> None:
    names = {a.py: a.xml for t in TABLES.values() for a in t.values()}
    assert names["num_digits"] == "numDigits"
    assert names["async_"] == "async"
    assert names["caller_id"] == "callerId"
    assert names["stay_alone"] == "stayAlone"
    assert names["relay_dtmf"] == "relayDTMF"
    assert names["digits_match_b_leg"] == "digitsMatchBLeg"
    assert names["interim_speech_results_callback_method"] == ("interimSpeechResultsCallbackMethod")


def test_attributes_not_given_are_not_rendered() -> None:
    assert (
        str(Gather(action=URL_A))
        == '<Gather action="https://example.com/menu?step=1&amp;lang=en"/>'
    )
    assert Gather().attrs == {}


@pytest.mark.parametrize(
    ("make", "xml"),
    [
        (lambda: Gather(digit_end_timeout="auto"), '<Gather digitEndTimeout="auto"/>'),
        (lambda: Gather(speech_end_timeout="10"), '<Gather speechEndTimeout="10"/>'),
        (lambda: Gather(finish_on_key=""), '<Gather finishOnKey=""/>'),
        (lambda: Gather(finish_on_key="none"), '<Gather finishOnKey="none"/>'),
        (lambda: Gather(hints=["yes", "no"]), '<Gather hints="yes,no"/>'),
        (lambda: Gather(input_type="dtmf speech"), '<Gather inputType="dtmf speech"/>'),
        (lambda: Record(finish_on_key="1234567890*#"), '<Record finishOnKey="1234567890*#"/>'),
        (lambda: Record(finish_on_key=""), '<Record finishOnKey=""/>'),
        (lambda: Dial(Number("+14156667890"), dial_music="real"), "real"),
        (lambda: Conference("r", enter_sound=""), '<Conference enterSound="">r</Conference>'),
        (lambda: Conference("r", exit_sound="beep:2"), "beep:2"),
        (lambda: Dial(User("sip:a@b.c"), caller_id="14155551234"), 'callerId="14155551234"'),
        (lambda: User("sip:a@b.c", sip_headers={"A": "1", "B": "2"}), 'sipHeaders="A=1,B=2"'),
        (lambda: User("sip:a@b.c", sip_headers="ReasonX-VH=billing"), "ReasonX-VH=billing"),
        (lambda: Stream("ws://localhost:8765/ws"), "<Stream>ws://localhost:8765/ws</Stream>"),
        (lambda: Speak("Hi", loop=0), '<Speak loop="0">Hi</Speak>'),
        (lambda: Speak("Hi", voice="MAN", language="hi-IN"), 'voice="MAN" language="hi-IN"'),
        (lambda: Hangup(reason="busy"), '<Hangup reason="busy"/>'),
        (lambda: Stream("wss://a.b/c", content_type="audio/x-mulaw;rate=8000"), "mulaw"),
    ],
)
def test_accepted_values(make: Any, xml: str) -> None:
    assert xml in str(make())


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: Play("  https://cdn.example.com/a.mp3\n"), "https://cdn.example.com/a.mp3"),
        (lambda: Number(" +14156667890 "), "+14156667890"),
        (lambda: User("\n sip:a@b.c\n"), "sip:a@b.c"),
        (lambda: Conference("  Room A  "), "Room A"),
        (lambda: Redirect(" https://example.com/x "), "https://example.com/x"),
        (lambda: DTMF(" 12 "), "12"),
        (lambda: Stream(" wss://a.b/c "), "wss://a.b/c"),
        (lambda: Speak("  trim my spaces \n"), "trim my spaces"),
        (lambda: Speak(" a  b ", voice="MAN"), "a  b"),
        (lambda: Dial(" +14156667890 "), "+14156667890"),
    ],
)
def test_text_trimmed_where_the_spec_says(make: Any, text: str) -> None:
    assert make().text == text


def test_url_attributes_are_trimmed() -> None:
    assert Gather(action="  https://example.com/a  ").get("action") == "https://example.com/a"


# --- errors --------------------------------------------------------------------------------------

BAD = [
    # types
    (
        lambda: Gather(num_digits="1"),
        "Gather: num_digits (numDigits) must be an integer from 1 to 32",
    ),
    (lambda: Gather(num_digits=True), "got True"),
    (lambda: Speak("x", loop=1.5), "Speak: loop must be an integer >= 0, got 1.5"),
    (lambda: Wait(silence=1), "Wait: silence must be True or False, got 1"),
    (lambda: Wait(silence="true"), "True or False"),
    (lambda: Gather(action=b"https://a.b"), "Gather: action must be an absolute"),
    (lambda: Speak(b"hello"), "Speak"),
    (lambda: Number(14156667890), "Number: text must be an E.164 number"),
    (lambda: Gather(hints=5), "hints"),
    (lambda: User("sip:a@b.c", sip_headers={"a": 1}), "sip_headers"),
    # ranges
    (
        lambda: Gather(num_digits=40),
        "Gather: num_digits (numDigits) must be an integer from 1 to 32, got 40",
    ),
    (lambda: Gather(num_digits=0), "from 1 to 32, got 0"),
    (
        lambda: Gather(execution_timeout=4),
        "execution_timeout (executionTimeout) must be an integer from 5 to 60",
    ),
    (lambda: Gather(execution_timeout=61), "got 61"),
    (
        lambda: Stream("wss://a.b/c", max_retries=11),
        "max_retries (maxRetries) must be an integer from 0 to 10",
    ),
    (lambda: Stream("wss://a.b/c", max_retries=-1), "got -1"),
    (lambda: Speak("x", loop=-1), "loop must be an integer >= 0"),
    (lambda: Play("https://a.b/c", loop=-2), "loop"),
    (lambda: Wait(length=0), "length must be an integer > 0"),
    (lambda: Wait(min_silence=0), "min_silence"),
    (lambda: Dial(time_limit=0), "time_limit"),
    (lambda: Dial(timeout=0), "timeout"),
    (lambda: Hangup(schedule=0), "schedule"),
    (lambda: Conference("r", max_participants=0), "max_participants"),
    (lambda: Stream("wss://a.b/c", stream_timeout=0), "stream_timeout"),
    (lambda: Record(max_length=0), "max_length"),
    (
        lambda: Gather(digit_end_timeout=1),
        "digit_end_timeout (digitEndTimeout) must be an integer from 2 to 10",
    ),
    (lambda: Gather(digit_end_timeout=11), "digitEndTimeout"),
    (lambda: Gather(speech_end_timeout="1"), "speechEndTimeout"),
    (lambda: Gather(speech_end_timeout="fast"), "'auto'"),
    # enums
    (lambda: Gather(method="post"), "Gather: method must be one of 'GET', 'POST', got 'post'"),
    (lambda: Gather(input_type="digits"), "'dtmf', 'speech', 'dtmf speech'"),
    (lambda: Gather(input_type="speech dtmf"), "input_type"),
    (lambda: Gather(speech_model="best"), "speech_model"),
    (
        lambda: Speak("x", voice="Polly.Amy"),
        "Speak: voice must be one of 'WOMAN', 'MAN', got 'Polly.Amy'",
    ),
    (lambda: Speak("x", voice="woman"), "voice"),
    (lambda: Speak("x", language="xx-XX"), "Speak: language must be one of"),
    (lambda: Stream("wss://a.b/c", audio_track="none"), "audio_track (audioTrack)"),
    (lambda: Stream("wss://a.b/c", content_type="audio/x-l16;rate=24000"), "content_type"),
    (lambda: Record(file_format="ogg"), "file_format (fileFormat) must be one of 'mp3', 'wav'"),
    (lambda: Record(transcription_type="manual"), "transcription_type"),
    (lambda: Conference("r", record_file_format="ogg"), "record_file_format"),
    (lambda: Hangup(reason="declined"), "Hangup: reason must be one of 'rejected', 'busy'"),
    # URLs
    (
        lambda: Gather(action="/relative"),
        "Gather: action must be an absolute https:// or http:// URL",
    ),
    (lambda: Gather(action="ftp://a.b/c"), "got 'ftp://a.b/c'"),
    (lambda: Gather(action="https://"), "action"),
    (lambda: Gather(action="https:///path"), "action"),
    (lambda: Gather(action="https://a.b/c d"), "action"),
    (lambda: Gather(action="https://a.b/\x00"), "action"),
    (lambda: Gather(action="https://a.b/{{call_id}}"), "placeholders"),
    (
        lambda: Dial(dial_music="fake"),
        "dial_music (dialMusic) must be an absolute https:// or http:// URL or 'real'",
    ),
    (lambda: Conference("r", enter_sound="beep:3"), "enter_sound"),
    (lambda: Play("ftp://a.b/c.mp3"), "Play: text must be an absolute https:// or http:// URL"),
    (lambda: Redirect("next"), "Redirect: text must be"),
    (lambda: Stream("https://a.b/ws"), "Stream: text must be an absolute wss:// or ws:// URL"),
    # numbers, SIP, digits, keys
    (lambda: Number("14156667890"), "add the leading '+'"),
    (lambda: Number("+1415"), "E.164"),
    (lambda: Number("+1234567890123456"), "E.164"),
    (lambda: Number("+0123456789"), "E.164"),
    (lambda: Number("+1 415 666 7890"), "E.164"),
    (lambda: Dial("4156667890"), "Dial: text must be one E.164 number"),
    (lambda: User("agent@example.com"), "User: text must be a SIP URI"),
    (lambda: User("sip:example.com"), "SIP URI"),
    (lambda: DTMF("12a"), "DTMF: text must be DTMF digits"),
    (lambda: DTMF(""), "DTMF"),
    (lambda: Number("+14156667890", send_digits="12x"), "send_digits (sendDigits)"),
    # 'W' (1 s) and '@ms' are the make-call API's (spec §1.2 Number), not the XML's
    (lambda: Number("+14156667890", send_digits="1W2"), "write 'ww' for a 1 s pause"),
    (lambda: User("sip:agent@example.com", send_digits="1@500"), "make-call API's only"),
    (lambda: Dial(confirm_key="##"), "confirm_key (confirmKey) must be one of 0-9"),
    (lambda: Dial(caller_id="Acme"), "caller_id (callerId) must be an E.164 number"),
    (lambda: Dial(caller_name="x" * 51), "at most 50 characters"),
    (lambda: Dial(caller_name="   "), "caller_name"),
    (lambda: Dial(digits_match="1,,2"), "digits_match"),
    (lambda: Conference("r", digits_match="12a"), "digits_match"),
    (
        lambda: Gather(finish_on_key="##"),
        "finish_on_key (finishOnKey) must be one of 0-9, '*', '#', '' or 'none'",
    ),
    (lambda: Gather(finish_on_key="a"), "finishOnKey"),
    (lambda: Record(finish_on_key="11"), "each at most once"),
    (lambda: Record(finish_on_key="1a"), "finishOnKey"),
    (lambda: Gather(language="english please"), "language tag"),
    # hints limits
    (lambda: Gather(hints=""), "hints must be non-empty"),
    (lambda: Gather(hints="a,,b"), "hints"),
    (lambda: Gather(hints=",".join(["x"] * 501)), "(501 phrases, over 500)"),
    (lambda: Gather(hints="x" * 101), "(phrase 1 has 101 characters, over 100"),
    (lambda: Gather(hints="a,b," + "x" * 101), "(phrase 3 has 101 characters"),
    (lambda: Gather(hints="a,,b"), "(phrase 2 is empty"),
    (
        lambda: Gather(hints=",".join(["y" * 100] * 100) + ",z"),
        "(10101 characters with the commas, over 10000)",
    ),
    (lambda: Gather(hints=["a,b"]), "phrases without commas"),
    # key=value lists
    (
        lambda: Dial(sip_headers="Reason=bill ing"),
        "sip_headers (sipHeaders) must be 'key=value' pairs",
    ),
    (lambda: Dial(sip_headers="Re-ason=billing"), "sipHeaders"),
    (lambda: Dial(sip_headers="=billing"), "sipHeaders"),
    (lambda: Dial(sip_headers="Reason"), "sipHeaders"),
    (lambda: Stream("wss://a.b/c", extra_headers="a_b=1"), "extra_headers (extraHeaders)"),
    (lambda: Stream("wss://a.b/c", extra_headers="k=" + "v" * 600), "at most 512 bytes"),
    # text content
    (lambda: Speak(""), "Speak: text is required"),
    (lambda: Speak("   \n"), "Speak: text is required"),
    (
        lambda: Speak("bell\x07"),
        "Speak: text contains U+0007 at position 4, which XML cannot carry",
    ),
    (lambda: Speak("lone \ud800 surrogate"), "U+D800"),
    (lambda: Speak("not a char \ufffe"), "U+FFFE"),
    (lambda: Speak("not a char \uffff"), "U+FFFF"),
    (lambda: Speak("ok ", "\x1b[0m"), "U+001B"),
    (lambda: Conference("room\x00"), "Conference: text must be"),
    (lambda: Conference("  "), "Conference: text must be a non-blank room name"),
    (lambda: Play(""), "Play"),
    (lambda: Dial(caller_name="A\x01"), "caller_name"),
    # children
    (
        lambda: Gather(Dial(Number("+14156667890"))),
        "Gather: cannot contain Dial; allowed children: Speak, Play",
    ),
    (lambda: Gather(Wait()), "Gather: cannot contain Wait"),
    (lambda: Response("hello"), "wrap text in Speak(...)"),
    (lambda: Response(Response()), "Response: cannot contain Response"),
    (lambda: Response(Number("+14156667890")), "Response: cannot contain Number"),
    (lambda: Response(Break()), "Response: children must be elements"),
    (lambda: Dial(Record()), "spec §6 item 7"),
    (lambda: Dial(Speak("x")), "Dial: cannot contain Speak; allowed children: Number, User"),
    (
        lambda: Dial("+14156667890", "+14156667891"),
        "either one number as text or Number/User children",
    ),
    (lambda: Dial("+14156667890", Number("+14156667891")), "not both"),
    (lambda: Dial("+14156667890").add(Number("+14156667891")), "use Number children instead"),
    (
        lambda: PreAnswer(Gather()),
        "PreAnswer: cannot contain Gather; allowed children: Speak, Play, Wait",
    ),
    (lambda: Speak("x").add(Speak("y")), "Speak: takes no child elements"),
    (lambda: Hangup().add(Speak("y")), "Hangup: takes no child elements"),
    (lambda: Response().add("hi"), "wrap text in Speak"),  # type: ignore[type-var]
    (lambda: Speak("x", Speak("y")), "Speak: content must be text or SSML"),
]


@pytest.mark.parametrize(("make", "message"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_values_raise_element_error(make: Any, message: str) -> None:
    with pytest.raises(ElementError) as info:
        make()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_element_error_carries_the_details() -> None:
    with pytest.raises(ElementError) as info:
        Gather(num_digits=40)
    assert info.value.element == "Gather"
    assert info.value.attribute == "numDigits"
    assert info.value.value == 40


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Gather(timeout=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Speak("x", numDigits=1)  # type: ignore[call-arg]


def test_a_rejected_value_stays_rejected_after_many_values() -> None:
    for i in range(5000):  # fills and clears the memo of checked strings
        Gather(action=f"https://example.com/{i}")
    with pytest.raises(ElementError):
        Gather(action="https://example.com/ x")
    assert Gather(action="https://example.com/4999").get("action") == "https://example.com/4999"


# --- document rules ------------------------------------------------------------------------------

RULES = [
    (lambda: Response(Hangup(), Speak("x")), "Hangup (child 1 of 2 in Response): ends the call"),
    (
        lambda: Response(Redirect("https://a.b/c"), Hangup()),
        "Redirect (child 1 of 2 in Response): must be the last",
    ),
    (
        lambda: Response(Speak("a"), PreAnswer(Speak("b"))),
        "PreAnswer (child 2 of 2 in Response): must be the first",
    ),
    (lambda: Response(Gather(Speak("x"))), "Gather (child 1 of 1 in Response): action is required"),
    (
        lambda: Response(Dial()),
        "Dial (child 1 of 1 in Response): needs at least one Number or User",
    ),
    (
        lambda: Response(Stream("wss://a.b/c", bidirectional=True, audio_track="both")),
        "bidirectional=True needs audio_track 'inbound'",
    ),
    (
        lambda: Response(Stream("wss://a.b/c", bidirectional=True, audio_track="outbound")),
        "got 'outbound'",
    ),
    (
        lambda: Response(Stream("wss://a.b/c", keep_call_alive=True)),
        "keep_call_alive=True needs bidirectional=True",
    ),
    (
        lambda: Response(Stream("wss://a.b/c", bidirectional=False, keep_call_alive=True)),
        "needs bidirectional",
    ),
    (
        lambda: Response(Wait(silence=True)),
        "min_silence (2000 ms) must be less than length x 1000 (1000 ms)",
    ),
    (lambda: Response(Wait(silence=True, length=2, min_silence=2000)), "min_silence"),
]


@pytest.mark.parametrize(("make", "message"), RULES, ids=[f"rule{i}" for i in range(len(RULES))])
def test_document_rules(make: Any, message: str) -> None:
    doc = make()  # building is fine: document rules are checked on validate / render
    for check in (
        doc.validate,
        doc.to_xml,
        lambda: doc.to_xml(pretty=True),
        doc.to_bytes,
        lambda: str(doc),
    ):
        with pytest.raises(ElementError) as info:
            check()
        assert message in str(info.value)


def test_rules_see_children_added_later() -> None:
    doc = Response(Speak("a"))
    dial = doc.add(Dial(caller_id="+14155551234"))
    with pytest.raises(ElementError, match="needs at least one Number"):
        doc.to_xml()
    dial.add(Number("+14156667890"))
    doc.validate()
    doc.add(Hangup())
    doc.to_xml()
    doc.add(Speak("after"))
    with pytest.raises(ElementError, match="nothing may follow"):
        doc.to_xml()


@pytest.mark.parametrize(
    "doc",
    [
        Response(Hangup(schedule=30), Speak("You have 30 seconds."), Wait(length=30)),
        Response(PreAnswer(Speak("a")), Speak("b"), Hangup()),
        Response(Stream("wss://a.b/c", bidirectional=True, audio_track="inbound")),
        Response(Stream("wss://a.b/c", bidirectional=True, keep_call_alive=True), Hangup()),
        Response(Stream("wss://a.b/c", audio_track="both")),
        Response(Wait(silence=True, length=3, min_silence=2000)),
        Response(Wait(silence=True, min_silence=999)),
        Response(Wait(min_silence=5000)),
        Response(Dial("+14156667890")),
        Response(Gather(action="https://a.b/c"), Redirect("https://a.b/d")),
    ],
)
def test_valid_documents(doc: Response) -> None:
    doc.validate()
    assert parse(doc.to_xml()) == doc


def test_size_limit() -> None:
    doc = Response(*[Speak("x" * 990) for _ in range(99)])
    assert len(doc.to_bytes()) < 100_000
    doc.add(Speak("y" * 990))
    with pytest.raises(ElementError, match="at most 100000"):
        doc.to_xml()
    # At the edge: exactly 100,000 bytes render, one more byte is refused (to_xml and
    # to_bytes both).
    head = len(Response(Speak("x")).to_bytes()) - 1
    assert len(Response(Speak("x" * (100_000 - head))).to_bytes()) == 100_000
    for render in (Response.to_xml, Response.to_bytes):
        with pytest.raises(ElementError, match="the document is 100001 bytes"):
            render(Response(Speak("x" * (100_001 - head))))
    wide = Response(*[Speak("é" * 500) for _ in range(100)])  # 1000 bytes each in UTF-8
    with pytest.raises(ElementError, match="bytes"):
        wide.to_bytes()


@pytest.mark.parametrize(
    "el", [Speak("x"), Gather(action="https://a.b"), Hangup(), Number("+14156667890")]
)
def test_only_a_response_is_a_document(el: Element) -> None:
    with pytest.raises(ElementError, match="only a Response can be rendered as a document"):
        el.to_xml()


# --- rendering -----------------------------------------------------------------------------------


def test_text_escaping() -> None:
    doc = Response(Speak("Tom & Jerry <3 > \"quotes\" 'single'"))
    assert "<Speak>Tom &amp; Jerry &lt;3 &gt; \"quotes\" 'single'</Speak>" in doc.to_xml()
    assert parse(doc.to_xml()) == doc


def test_carriage_returns_survive_in_text() -> None:
    doc = Response(Speak("line one\r\nline two\rthree\ttab"))
    assert "&#13;" in doc.to_xml()
    assert parse(doc.to_xml()).children[0].text == "line one\r\nline two\rthree\ttab"


def test_attribute_escaping() -> None:
    dial = Dial(Number("+14156667890"), caller_name='A & "B" <c>', action='https://a.b/?x=1&y="2"')
    xml = str(dial)
    assert 'callerName="A &amp; &quot;B&quot; &lt;c&gt;"' in xml
    assert 'action="https://a.b/?x=1&amp;y=&quot;2&quot;"' in xml
    tree = etree.fromstring(xml)
    assert tree.get("callerName") == 'A & "B" <c>'


def test_whitespace_in_attributes_round_trips() -> None:
    doc = Response(Gather(action="https://a.b", hints="new\nline,tab\there,cr\rhere"))
    xml = doc.to_xml()
    assert "&#10;" in xml and "&#9;" in xml and "&#13;" in xml
    assert etree.fromstring(xml.encode())[0].get("hints") == "new\nline,tab\there,cr\rhere"
    assert parse(xml) == doc


def test_attribute_order_does_not_depend_on_keyword_order() -> None:
    a = Gather(action="https://a.b", num_digits=1, input_type="dtmf", method="GET")
    b = Gather(method="GET", input_type="dtmf", num_digits=1, action="https://a.b")
    assert (
        str(a)
        == str(b)
        == '<Gather action="https://a.b" method="GET" inputType="dtmf" numDigits="1"/>'
    )


def test_pretty_output() -> None:
    doc = Response(
        PreAnswer(Speak("early")),
        Speak("Hi", SayAs("42", interpret_as="digits")),
        Gather(
            Speak("  spaced  "),
            Play("https://a.b/c.mp3"),
            action="https://a.b/g",
            input_type="dtmf",
        ),
        Dial("+14156667890"),
        Dial(Number("+14156667891")),
        Hangup(),
    )
    pretty = doc.to_xml(pretty=True)
    assert pretty == "\n".join(
        [
            DECL,
            "<Response>",
            "  <PreAnswer>",
            "    <Speak>early</Speak>",
            "  </PreAnswer>",
            '  <Speak>Hi<say-as interpret-as="digits">42</say-as></Speak>',
            '  <Gather action="https://a.b/g" inputType="dtmf">',
            "    <Speak>spaced</Speak>",
            "    <Play>https://a.b/c.mp3</Play>",
            "  </Gather>",
            "  <Dial>+14156667890</Dial>",
            "  <Dial>",
            "    <Number>+14156667891</Number>",
            "  </Dial>",
            "  <Hangup/>",
            "</Response>",
        ]
    )
    assert parse(pretty) == doc
    assert Response(PreAnswer(), Gather(action="https://a.b")).to_xml(pretty=True).split("\n")[
        2:4
    ] == [
        "  <PreAnswer/>",
        '  <Gather action="https://a.b"/>',
    ]


def test_pretty_keeps_every_text_node() -> None:
    doc = Response(
        Speak("  spaced  "),
        Gather(Speak(" a\nb "), action="https://a.b/g", input_type="dtmf"),
        Dial("+14156667890"),
        Conference("room", stay_alone=True),
        Hangup(),
    )
    compact = etree.fromstring(doc.to_bytes())
    pretty = etree.fromstring(doc.to_bytes(pretty=True))
    texts = lambda t: [e.text for e in t.iter() if e.text and e.text.strip()]  # noqa: E731
    assert texts(compact) == texts(pretty)
    assert parse(doc.to_xml(pretty=True)) == doc


def test_str_and_bytes() -> None:
    doc = Response(Speak("Grüße & Tschüss"))
    assert str(doc) == doc.to_xml()
    assert doc.to_bytes() == doc.to_xml().encode("utf-8")
    assert doc.to_xml().startswith(DECL)
    assert str(Speak("a&b")) == "<Speak>a&amp;b</Speak>"


def test_rendering_twice_is_identical_and_sees_additions() -> None:
    g = Gather(action="https://a.b")
    doc = Response(g, Hangup())
    first = doc.to_xml()
    assert doc.to_xml() == first
    g.add(Speak("added"))
    assert "<Speak>added</Speak></Gather>" in doc.to_xml()


# --- reading API, building, equality, repr -------------------------------------------------------


def test_reading_api() -> None:
    g = Gather(Speak("a"), action="https://a.b", num_digits=3, log=False)
    assert g.tag == "Gather" and Gather.tag == "Gather"
    assert g.attrs == {"action": "https://a.b", "numDigits": "3", "log": "false"}
    g.attrs["numDigits"] = "99"  # a copy: the element does not change
    assert g.get("numDigits") == "3" == g.get("num_digits")
    assert g.get("method") is None
    assert g.get("method", "POST") == "POST"
    assert g.get("nonsense", "d") == "d"
    assert g.text is None
    kids = g.children
    kids.clear()
    assert g.children == [Speak("a")]
    assert Hangup().children == [] and Hangup().text is None
    assert Number("+14156667890").text == "+14156667890"
    assert DTMF("1", async_=True).get("async_") == DTMF("1", async_=True).get("async") == "true"


def test_add_and_with_blocks() -> None:
    with Response() as r:
        with r.add(Gather(action="https://a.b", input_type="dtmf")) as g:
            spoken = g.add(Speak("Press 1"))
        r.add(Speak("Bye"))
        r.add(Hangup())
    assert spoken == Speak("Press 1")
    assert r == Response(
        Gather(Speak("Press 1"), action="https://a.b", input_type="dtmf"), Speak("Bye"), Hangup()
    )
    with Dial(caller_id="+14155551234") as d:
        d.add(Number("+14156667890"))
        d.add(User("sip:a@b.c"))
    assert [c.tag for c in d.children] == ["Number", "User"]


def test_equality_by_structure() -> None:
    assert Speak("a") == Speak("a")
    assert Speak("a") != Speak("b")
    assert Speak("a", loop=2) != Speak("a")
    assert Speak("a") != Play("https://a.b")
    assert Speak("ab") == Speak("a", "b")  # adjacent strings merge, as parsing would
    assert Response(Speak("a")) != Response(Speak("a"), Hangup())
    assert Dial("+14156667890") != Dial(Number("+14156667890"))
    assert Speak("a") != "a"
    with pytest.raises(TypeError):
        hash(Speak("a"))


def test_repr_is_readable_and_evaluable() -> None:
    doc = Response(
        Speak("Hi ", Break(time="1s"), voice="MAN"),
        Gather(Speak("x"), action="https://a.b", num_digits=2, log=False, hints="a,b"),
        Dial(Number("+14156667890", send_on_preanswer=True), caller_id="+14155551234"),
        DTMF("1", async_=False),
        Hangup(),
    )
    text = repr(doc)
    assert "num_digits=2" in text and "log=False" in text and "async_=False" in text
    namespace = {cls.__name__: cls for cls in BASE} | {"Break": Break}
    assert eval(text, namespace) == doc


# --- SSML ----------------------------------------------------------------------------------------


def test_ssml_renders_mixed_with_text() -> None:
    s = Speak("Hello ", Break(time="500ms"), SayAs("123", interpret_as="spell-out"))
    assert str(s) == (
        '<Speak>Hello <break time="500ms"/><say-as interpret-as="spell-out">123</say-as></Speak>'
    )
    assert s.text == "Hello 123"
    assert s.ssml == ["Hello ", Break(time="500ms"), SayAs("123", interpret_as="spell-out")]


def test_every_ssml_node() -> None:
    s = Speak(
        P(
            S("One ", Emphasis("two", level="strong")),
            S(Prosody("three", rate="80%", pitch="+10%", volume="-6dB")),
        ),
        Lang("quatre", xml_lang="fr-FR"),
        Phoneme("pecan", ph="pI.kA:n", alphabet="x-sampa"),
        Sub("W3C", alias="World Wide Web Consortium"),
        W("read", role="amazon:VBD"),
        Break(strength="strong"),
        SayAs("12/31", interpret_as="date", format="md"),
        language="en-US",
    )
    xml = str(s)
    for fragment in [
        '<p><s>One <emphasis level="strong">two</emphasis></s>',
        '<prosody rate="80%" pitch="+10%" volume="-6dB">three</prosody>',
        '<lang xml:lang="fr-FR">quatre</lang>',
        '<phoneme alphabet="x-sampa" ph="pI.kA:n">pecan</phoneme>',
        '<sub alias="World Wide Web Consortium">W3C</sub>',
        '<w role="amazon:VBD">read</w>',
        '<break strength="strong"/>',
        '<say-as interpret-as="date" format="md">12/31</say-as>',
    ]:
        assert fragment in xml
    assert s.text == "One twothreequatrepecanW3Cread12/31"
    doc = Response(s)
    assert parse(doc.to_xml()) == doc
    assert parse(doc.to_xml(pretty=True)) == doc


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Break(time="11s"), "at most 10 seconds"),
        (lambda: Break(time="500"), "break: time"),
        (lambda: Break(strength="loud"), "strength"),
        (lambda: Emphasis("x", level="max"), "emphasis: level"),
        (lambda: SayAs("1", interpret_as="money"), "say-as: interpret_as (interpret-as)"),
        (lambda: SayAs("1", interpret_as="date", format="ddmmyyyy"), "format"),
        (lambda: SayAs("", interpret_as="digits"), "say-as: text is required"),
        (lambda: Prosody("x", rate="warp"), "prosody: rate"),
        (lambda: Prosody("x", volume="+100dB"), "volume"),
        (lambda: Lang("x", xml_lang="french!"), "xml_lang (xml:lang)"),
        (lambda: Sub("x", alias=""), "sub: alias"),
        (lambda: W("x", role="verb"), "w: role"),
        (lambda: W(P("x")), "w: content must be text or SSML"),
        (lambda: S(P("x")), "s: content must be"),
        (lambda: Emphasis(S("x")), "emphasis"),
        (lambda: Emphasis("a\x00"), "U+0000"),
        (lambda: Speak(Break()), "Speak: text is required"),
        (lambda: Speak(Break(), " "), "text is required"),
        (lambda: Speak("x", 5), "Speak: content must be text or SSML"),
    ],
)
def test_ssml_errors(make: Any, message: str) -> None:
    with pytest.raises(ElementError) as info:
        make()
    assert message in str(info.value)


def test_ssml_required_attributes_are_required_keywords() -> None:
    with pytest.raises(TypeError):
        Sub("x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        SayAs("1")  # type: ignore[call-arg]


def test_ssml_nodes_compare_and_repr() -> None:
    assert Prosody("a", rate="slow") == Prosody("a", rate="slow")
    assert Prosody("a", rate="slow") != Prosody("a", rate="fast")
    assert Prosody("a", rate="slow") != S("a")
    assert repr(Prosody("a", rate="slow")) == "Prosody('a', rate='slow')"
    assert Prosody("a", rate="slow").attrs == {"rate": "slow"}
    assert Prosody("a", Break()).content == ["a", Break()]


def test_tables_cover_every_element() -> None:
    assert set(TABLES) == {cls for cls in BASE}
    kinds = {type(a) for t in TABLES.values() for a in t.values()}
    assert kinds <= {
        Bool,
        Int,
        Enum,
        URL,
        EndTimeout,
        Hints,
        KeyValues,
        Pattern,
        Text,
        Method,
    }


MENU = "https://voice.example.com/menu"


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: Gather(action=MENU, timeout=5), r"there is no timeout .* use execution_timeout"),
        (lambda: Play("https://a.example/x.mp3", digits="1"), "use the DTMF element"),
        (lambda: Number("+14155551234", sip_headers="a=1"), "set sip_headers on the Dial"),
        (lambda: Gather(action=MENU, type="speech"), "use input_type"),
        (lambda: Gather(action=MENU, digitTimeout=3), "use digit_end_timeout"),
        (lambda: Gather(action=MENU, digit_timeout=3), "use digit_end_timeout"),
        (lambda: Gather(action=MENU, validDigits="12"), "legacy Plivo attribute"),
        (lambda: Gather(action=MENU, numDigits=1), "as the keyword num_digits="),
        (lambda: Dial(Number("+14156667890"), callerId="+14155551234"), "caller_id="),
        (lambda: Conference("room", maxMembers=5), "use max_participants"),
        (lambda: Record(actoin=URL), "did you mean action=?"),
        (lambda: Stream("wss://s.example.com/", audioTrack="inbound"), "audio_track="),
    ],
)
def test_a_foreign_keyword_names_the_vobizxml_one(build: Any, says: str) -> None:
    # Still a TypeError, as Python's own for an unknown keyword, with the advice added.
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument '\w+': .*" + says):
        build()


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: Gather(action=MENU, method="post"), r"did you mean 'POST'\? the values are case"),
        (lambda: Gather(action=MENU, input_type="DTMF"), r"did you mean 'dtmf'\?"),
        (lambda: Gather(action=MENU, num_digits="2"), r"pass the number 2, not the string '2'"),
        (lambda: Gather(action=MENU, redirect="true"), r"pass True or False, not the string"),
        (lambda: Number("+1 415 555 1234"), r"write it .\+14155551234."),
        (lambda: Number("(415) 555-1234"), r"add the leading '\+' and the country code"),
        (lambda: Number("sip:agent@example.com"), r"dialled with User\('sip:...'\)"),
        (
            lambda: Dial(Number("+14155550101"), caller_id="+1 415 555 0100"),
            r"caller_id \(callerId\) must be .* write it .\+14155550100.",
        ),
        (lambda: Gather(action="https://x.example.com/a?name=John Smith"), "a space is %20"),
    ],
)
def test_a_value_in_the_wrong_form_gets_advice(build: Any, says: str) -> None:
    with pytest.raises(ElementError, match=says):
        build()


def test_parse_gives_no_python_advice_for_an_out_of_range_number() -> None:
    with pytest.raises(ParseError) as caught:
        parse('<Response><Gather action="https://x.example.com/" numDigits="40"/></Response>')
    assert "not the string" not in str(caught.value)


@pytest.mark.parametrize(("given", "keyword"), [("WOMAN", "voice"), ("en-US", "language")])
def test_plivo_positional_voice_or_language_is_refused_not_spoken(given: str, keyword: str) -> None:
    with pytest.raises(ElementError, match=f"a {keyword} is a keyword: Speak\\(text, {keyword}="):
        Speak("Hello", given)
    # Text pieces that merely contain such words are spoken as given.
    assert "Hello WOMAN" in Response(Speak("Hello", " WOMAN doctor")).to_xml()


@pytest.mark.parametrize(
    ("number", "form"),
    [
        ("+44 (0)20 7946 0000", "+442079460000"),
        ("0044 20 7946 0000", "+442079460000"),
        ("+1.415.555.0142", "+14155550142"),
    ],
)
def test_number_advice_names_the_e164_form_it_stands_for(number: str, form: str) -> None:
    with pytest.raises(ElementError, match=re.escape(f"write it '{form}'")):
        Number(number)


def test_ssml_mixed_with_words_that_are_voices_is_spoken_as_written() -> None:
    assert "MAN" in Response(Speak("The role is", Emphasis("lead"), "MAN")).to_xml()
    assert "en-US" in Response(Speak(Emphasis("Locale"), "en-US")).to_xml()


def test_the_positional_check_holds_beside_a_keyword_too() -> None:
    with pytest.raises(ElementError, match="a voice is a keyword"):
        Speak("Hello", "WOMAN", language="en-US")


def test_a_shallow_copy_of_a_container_has_children_of_its_own() -> None:
    # copy.copy once shared the child list: an add() to the copy changed the original,
    # whose render cache and rule count did not know (stale XML, a Hangup rule unchecked).
    import copy

    base = Response(Speak("Welcome"))
    variant = copy.copy(base)
    variant.add(Hangup())
    variant.add(Speak("never heard"))
    assert base.to_xml().endswith("<Response><Speak>Welcome</Speak></Response>")
    with pytest.raises(ElementError, match="nothing may follow it"):
        variant.to_xml()
    dial = Dial(caller_id="+14155551234")
    more = copy.copy(dial)
    more.add(Number("+14156667890"))
    assert dial.children == [] and more.children == [Number("+14156667890")]
    with pytest.raises(ElementError, match="needs at least one Number"):
        Response(dial).to_xml()
    assert "<Number>+14156667890</Number>" in Response(more).to_xml()
    menu = Gather(Speak("Press 1"), action="https://a.example/m")
    longer = copy.copy(menu)
    longer.add(Speak("Press 2"))
    assert menu != longer and str(menu).count("<Speak>") == 1 and str(longer).count("<Speak>") == 2

    class Noted(Response):
        note: str

    noted = Noted(Speak("hi"))
    noted.note = "kept"
    assert copy.copy(noted).note == "kept" and type(copy.copy(noted)) is Noted


@pytest.mark.parametrize(
    "build",
    [
        lambda: Conference("room\x0c"),
        lambda: Number("+14155551234\x1f"),
        lambda: Dial(caller_name="Bob\x1c"),
        lambda: Play("https://a.example/x.mp3\x0b"),
        lambda: Redirect("\x1chttps://a.example/"),
        lambda: DTMF("12\x1d"),
        lambda: Gather(action="https://a.example/\x0c"),
    ],
)
def test_a_control_character_at_either_end_of_a_value_is_refused_not_dropped(
    build: Any,
) -> None:
    # str.strip() takes \x0b, \x0c and \x1c-\x1f for whitespace: trimming once dropped them
    # without a word, while the same character inside a value was refused.
    with pytest.raises(ElementError):
        build()


def test_outer_whitespace_is_still_trimmed() -> None:
    assert Conference(" room \n").text == "room" and Number(" +14155551234\t").text == (
        "+14155551234"
    )
