"""Advice that is not an error (lint) and the finders tests use on parsed documents."""

from __future__ import annotations

import pytest

from answerkit.elements import (
    Conference,
    Dial,
    Element,
    Gather,
    Hangup,
    Number,
    Play,
    Record,
    Redirect,
    Response,
    Speak,
    Stream,
    User,
    Wait,
)
from answerkit.errors import ElementError
from answerkit.lint import LintWarning
from answerkit.query import dialed_numbers, find, find_all, spoken_text, walk
from answerkit.ssml import SayAs

# --- lint ----------------------------------------------------------------------------------------

LINTS = [
    (Conference("r"), "Conference", "stay_alone=True"),
    (Conference("r", stay_alone=True, record=True), "Conference", "record produces no file"),
    (Conference("r", stay_alone=True, max_participants=5), "Conference", "not effective"),
    (Conference("r", stay_alone=True, wait_method="GET"), "Conference", "always POST"),
    (Conference("r", stay_alone=True, action="https://a.b"), "Conference", "not reliably invoked"),
    (Dial(Number("+14156667890"), timeout=30), "Dial", "no caller_id"),
    (Dial(Number("+14156667890"), caller_id="+14155551234"), "Dial", "no timeout"),
    (
        Dial(Number("+14156667890"), caller_id="+14155551234", timeout=30, confirm_key="1"),
        "Dial",
        "unverified",
    ),
    (
        Dial(Number("+14156667890"), caller_id="+14155551234", timeout=30, time_limit=90000),
        "Dial",
        "24 h",
    ),
    (
        Dial("+14156667890", caller_id="+14155551234", timeout=30),
        "Dial",
        "Number(...) children are preferred",
    ),
    (Gather(action="https://a.b"), "Gather", "spec §6 item 3"),
    (
        Gather(action="https://a.b", input_type="dtmf", hints="a"),
        "Gather",
        "only applies to speech",
    ),
    (
        # Partial transcripts (spec §2.4): nothing is ever posted there for dtmf input.
        Gather(
            action="https://a.b", input_type="dtmf", interim_speech_results_callback="https://a.b/i"
        ),
        "Gather",
        "interimSpeechResultsCallback only applies to speech",
    ),
    (
        Gather(action="https://a.b", input_type="speech", digit_end_timeout=3),
        "Gather",
        "only applies to dtmf",
    ),
    (
        Gather(action="https://a.b", input_type="speech", language="xx-YY"),
        "Gather",
        "recognition list",
    ),
    (Record(), "Record", "spec §6 item 6"),
    (Record(action="https://a.b/r"), "Record", "RecordStop, spec §2.6"),
    (Dial(Number("+14155550101"), caller_id="14155550100"), "Dial", "'+14155550100'"),
    (Speak("x", voice="MAN", language="sv-SE"), "Speak", "no MAN voice"),
    (Speak("x", language="pt-PT"), "Speak", "no WOMAN voice"),
    (Speak("x", language="en-IN"), "Speak", "spec §6 item 14"),
    (Speak("x", language="hi-IN"), "Speak", "spec §6 item 14"),
    (Stream("wss://a.b/c"), "Stream", "the call ends at once"),
    (Stream("ws://localhost/c", bidirectional=True, keep_call_alive=True), "Stream", "local tests"),
    (Play("http://a.b/c.mp3"), "Play", "http://"),
    (Wait(min_silence=100), "Wait", "only used with silence=True"),
    (Wait(length=5, silence=True, beep=True), "Wait", "beep is only evaluated"),
    (Record(redirect=True), "Record", "spec §6 item 6"),
    (
        Dial(Number("+14155550101"), caller_id="+14155550100", timeout=20, confirm_key="1"),
        "Dial",
        "no confirm_timeout",
    ),
    # A URL escaped before answerkit escaped it: Vobiz would receive a parameter 'amp;b'.
    (
        Gather(action="https://a.b/menu?a=1&amp;b=2", input_type="dtmf"),
        "Gather",
        "action holds an XML escape ('&amp;')",
    ),
    (Redirect("https://a.b/next?x=1&#38;y=2"), "Redirect", "the URL holds an XML escape ('&#38;')"),
    (Play("https://a.b/c.mp3?t=1&amp;u=2"), "Play", "write the plain character"),
]


@pytest.mark.parametrize(
    ("el", "tag", "fragment"), LINTS, ids=[f"lint{i}" for i in range(len(LINTS))]
)
def test_lint_warnings(el: Element, tag: str, fragment: str) -> None:
    warnings = Response(el).lint()
    assert any(w.element == tag and fragment in w.message for w in warnings), warnings


def test_lint_document_level_warnings() -> None:
    warnings = Response(Gather(action="https://a.b", input_type="dtmf")).lint()
    assert [str(w) for w in warnings] == [
        "Gather: nothing follows the Gather: on a timeout Vobiz may move on and end the call "
        "(spec §6 item 2); add fallback elements after it"
    ]
    assert any("schedule" in w.message for w in Response(Hangup(schedule=5)).lint())
    late = Response(Dial("+14156667890"), Record(record_session=True, action="https://a.b"))
    assert any(w.element == "Record" and "before the Dial" in w.message for w in late.lint())
    assert any(
        "http://" in w.message
        for w in Response(Dial(Number("+14156667890"), action="http://a.b")).lint()
    )


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "[::1]:5000", "127.5.6.7"])
def test_plain_http_on_this_machine_is_no_advice(host: str) -> None:
    # A local server (answerkit run, check with a loopback public_url): every Gather and
    # Redirect gave 'Vobiz documents only https://', burying the advice that mattered.
    doc = Response(
        Gather(action=f"http://{host}/menu", input_type="dtmf"),
        Play(f"http://{host}/hold.mp3"),
        Redirect(f"http://{host}/next"),
    )
    assert not [w for w in doc.lint() if "http://" in w.message]
    # A name that only starts like this machine is another machine.
    for other in ("voice.example.com", "127.evil.example", "localhost.example.com"):
        remote = Response(Redirect(f"http://{other}/next"))
        assert [w.message for w in remote.lint() if "http://" in w.message], other


def test_lint_leaves_a_plain_ampersand_and_escape_like_text_alone() -> None:
    doc = Response(
        Gather(Speak("Tom &amp; Jerry"), action="https://a.b/menu?a=1&b=2", input_type="dtmf"),
        Redirect("https://a.b/next?q=amp;x"),
        Speak("https://a.b/?x=1&amp;y=2 is our site"),  # words, not a URL Vobiz calls
    )
    assert not [w for w in doc.lint() if "XML escape" in w.message]


def test_lint_clean_document() -> None:
    doc = Response(
        Record(record_session=True, action="https://a.b/rec", callback_url="https://a.b/saved"),
        Speak("Please hold while we transfer your call."),
        Dial(Number("+14156667890"), caller_id="+14155551234", timeout=30, action="https://a.b/d"),
        Conference("room", stay_alone=True),
        Gather(Speak("Press 1"), action="https://a.b/g", input_type="dtmf"),
        Hangup(),
    )
    assert doc.lint() == []


def test_lint_open_questions_of_the_spec() -> None:
    # Spec §6 items 9 and 4: advice where the sources disagree and a wrong guess fails
    # silently on a live call.
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", timeout=30)
    after = Response(Speak("Hold."), dial, Speak("Sorry, nobody answered.")).lint()
    assert any(w.element == "Dial" and "§6 item 9" in w.message for w in after)
    # A Hangup alone after it ends the call either way.
    assert Response(Speak("Hold."), dial, Hangup()).lint() == []
    with_action = Dial(Number("+14156667890"), caller_id="+14155551234", timeout=30,
                       action="https://a.b/d")  # fmt: skip
    assert not any(
        "§6 item 9" in w.message
        for w in Response(Speak("Hold."), with_action, Speak("Sorry.")).lint()
    )
    headers = Dial(Number("+14156667890"), caller_id="+14155551234", timeout=30,
                   sip_headers={"Reason": "billing"})  # fmt: skip
    assert any("§6 item 4" in w.message for w in Response(Speak("Hold."), headers).lint())
    user = Dial(User("sip:agent@example.com", sip_headers="Reason=billing"),
                caller_id="+14155551234", timeout=30)  # fmt: skip
    found = Response(Speak("Hold."), user).lint()
    assert any(w.element == "User" and "§6 item 4" in w.message for w in found)


def test_lint_warning_type() -> None:
    w = LintWarning("Dial", "no caller_id")
    assert str(w) == "Dial: no caller_id"
    with pytest.raises(AttributeError):
        w.message = "x"  # type: ignore[misc]
    assert w == LintWarning("Dial", "no caller_id")


# --- queries -------------------------------------------------------------------------------------


def test_queries() -> None:
    doc = Response(
        Speak("Hello ", SayAs("1", interpret_as="digits")),
        Gather(Speak("Press 1"), action="https://a.b"),
        Dial(Number("+14156667890"), User("sip:a@b.c")),
        Dial("+14156667891"),
        Hangup(),
    )
    assert [d.tag for d in find_all(doc, Dial)] == ["Dial", "Dial"]
    assert find(doc, Gather) is doc.children[1]
    assert find(doc, Stream) is None
    assert find_all(doc, Response) == [doc]
    assert dialed_numbers(doc) == ["+14156667890", "sip:a@b.c", "+14156667891"]
    assert spoken_text(doc) == ["Hello 1", "Press 1"]
    assert [e.tag for e in walk(doc)] == [
        "Response", "Speak", "Gather", "Speak", "Dial", "Number", "User", "Dial", "Hangup",
    ]  # fmt: skip


def test_control_characters_are_refused_in_sip_uris() -> None:
    # The SIP pattern leaves out markup and whitespace, not the control characters XML cannot
    # carry: they are refused too (the XML would not parse).
    for uri in ("sip:a\x01@b.c", "sip:a@b\x7f.c", "sip:a@b.c\ufffe"):
        with pytest.raises(ElementError, match="SIP URI"):
            User(uri)


def test_str_subclasses_are_plain_text() -> None:
    class Label(str):
        pass

    assert Speak(Label("hi")) == Speak("hi")
    assert Number(Label("+14156667890")).text == "+14156667890"
    assert type(Number(Label("+14156667890")).text) is str
    assert Gather(action=Label("https://a.b"), method=Label("GET")).attrs == {
        "action": "https://a.b",
        "method": "GET",
    }


def test_long_values_are_checked_every_time() -> None:
    long_url = "https://example.com/" + "a" * 1000
    assert Gather(action=long_url).get("action") == long_url
    with pytest.raises(ElementError):
        Gather(action=long_url + " x")
    assert Speak("y" * 2000).text == "y" * 2000
