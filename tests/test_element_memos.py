"""The constructors' fast paths: memoised checks and tags never let a value through that the
full check refuses, render exactly as the full path does, and stay bounded."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from answerkit._xmltext import esc_text
from answerkit.elements import (
    Dial,
    Element,
    Gather,
    Hangup,
    Number,
    Play,
    Redirect,
    Response,
    Speak,
    Wait,
)
from answerkit.errors import ElementError
from answerkit.parse import parse
from answerkit.ssml import Break

URL_A = "https://example.com/menu?step=1&lang=en"


# --- memos: a hit renders as the full check does, and never lets a value through -------------

_GATHER_FORMS: list[dict[str, Any]] = [
    {"action": URL_A, "input_type": "dtmf", "num_digits": 1},  # the short key
    {"action": URL_A, "method": "GET", "execution_timeout": 10, "finish_on_key": "#"},
    {"action": URL_A, "input_type": "speech", "language": "en-US", "hints": "yes,no"},  # full
    {"action": URL_A, "digit_end_timeout": "auto", "log": True, "profanity_filter": False},
]
_DIAL_FORMS: list[dict[str, Any]] = [
    {"caller_id": "+14155551234"},  # the short key
    {"action": URL_A, "caller_id": "+14155551234", "timeout": 20, "time_limit": 600},
    {"caller_id": "+14155551234", "hangup_on_star": True, "sip_headers": "a=1"},  # full
]


@pytest.mark.parametrize("kw", _GATHER_FORMS + _DIAL_FORMS, ids=lambda kw: ",".join(kw))
def test_a_memoised_start_tag_renders_as_the_first_time(kw: dict[str, Any]) -> None:
    cls: type[Element] = Dial if "caller_id" in kw else Gather
    kids = (Number("+14156667890"),) if cls is Dial else (Speak("Press 1"),)
    first = Response(cls(*kids, **kw)).to_xml()
    again = Response(cls(*kids, **kw)).to_xml()  # the memo's hit
    assert again == first
    assert parse(again).to_xml() == first
    # The same values in another keyword order: the same tag.
    assert Response(cls(*kids, **dict(reversed(kw.items())))).to_xml() == first


LOOK_ALIKES = [
    (Gather, {"num_digits": 1}, {"num_digits": True}),
    (Gather, {"num_digits": 1}, {"num_digits": 1.0}),
    (Gather, {"execution_timeout": 10}, {"execution_timeout": 10.0}),
    (Gather, {"digit_end_timeout": 5, "log": True}, {"digit_end_timeout": 5.0, "log": True}),
    (Gather, {"digit_end_timeout": 5, "log": True}, {"digit_end_timeout": 5, "log": 1}),
    (
        Gather,
        {"speech_end_timeout": 2, "redirect": False},
        {"speech_end_timeout": 2, "redirect": 0},
    ),
    (Dial, {"timeout": 1}, {"timeout": True}),
    (Dial, {"time_limit": 60, "hangup_on_star": True}, {"time_limit": 60, "hangup_on_star": 1}),
]


@pytest.mark.parametrize(("cls", "good", "bad"), LOOK_ALIKES)
def test_an_equal_value_of_another_type_is_refused_after_the_real_one(
    cls: type[Element], good: dict[str, Any], bad: dict[str, Any]
) -> None:
    # 1 == True == 1.0 and they hash alike: a memo keyed by the values must not take one for
    # the other. Refused before and after the good value is memoised, with the same error.
    with pytest.raises(ElementError) as before:
        cls(action=URL_A, **bad)
    cls(action=URL_A, **good)
    cls(action=URL_A, **good)
    with pytest.raises(ElementError) as after:
        cls(action=URL_A, **bad)
    assert str(after.value) == str(before.value)
    assert after.value.attribute == before.value.attribute


def test_a_bad_value_after_a_good_one_is_still_refused() -> None:
    Gather(action=URL_A, input_type="dtmf", num_digits=2)
    for bad in (
        {"action": URL_A + " x", "input_type": "dtmf", "num_digits": 2},
        {"action": URL_A, "input_type": "dtmfx", "num_digits": 2},
        {"action": URL_A, "input_type": "dtmf", "num_digits": 33},
        {"action": URL_A, "input_type": "dtmf", "num_digits": 2, "hints": ""},
    ):
        with pytest.raises(ElementError):
            Gather(**bad)
    Dial(Number("+14156667890"), caller_id="+14155551234")
    with pytest.raises(ElementError):
        Dial(Number("+14156667890"), caller_id="+1415555123x")


def test_unhashable_values_take_the_full_check() -> None:
    g = Gather(action=URL_A, hints=["yes", "no"])
    assert g.get("hints") == "yes,no"
    assert Gather(action=URL_A, hints=["yes", "no"]) == g
    assert Dial(Number("+14156667890"), sip_headers={"a": "1"}).get("sipHeaders") == "a=1"
    # Refused as values (ElementError), not as keys of a memo (TypeError).
    with pytest.raises(ElementError):
        Gather(action=[URL_A])  # type: ignore[arg-type]
    with pytest.raises(ElementError):
        Gather(action=URL_A, language=["en-US"])  # type: ignore[arg-type]
    with pytest.raises(ElementError):
        Dial(Number("+14156667890"), caller_id={"+14155551234"})  # type: ignore[arg-type]


def test_a_str_look_alike_gets_the_full_check() -> None:
    class Odd(str):
        """Equal to its text, but renders as something else."""

        def __str__(self) -> str:
            return "javascript:alert(1)"

    Gather(action="https://a.b/odd", method="GET")
    with pytest.raises(ElementError):
        Gather(action=Odd("https://a.b/odd"), method="GET")
    with pytest.raises(ElementError):
        Gather(action="https://a.b/odd", method=Odd("GET"))
    Number("+14156667891")
    with pytest.raises(ElementError):
        Number(Odd("+14156667891"))


def test_tag_memos_stay_bounded() -> None:
    from answerkit._xmltext import MEMO_LIMIT, TAG_MAX_LEN
    from answerkit.elements import _GATHER_SHORT

    for i in range(MEMO_LIMIT + 50):
        Gather(action=f"https://example.com/bounded/{i}", num_digits=1)
    assert len(_GATHER_SHORT.memo) <= MEMO_LIMIT
    # Still checked and rendered once full.
    assert Gather(action="https://example.com/after", num_digits=3).attrs == {
        "action": "https://example.com/after",
        "numDigits": "3",
    }
    with pytest.raises(ElementError):
        Gather(action="https://example.com/after x", num_digits=3)
    long_url = "https://example.com/" + "b" * TAG_MAX_LEN
    assert Gather(action=long_url).get("action") == long_url


def test_a_tag_memo_keeps_no_value_longer_than_a_text_memo_would() -> None:
    # Values are trimmed before rendering: a short tag's key once held a million spaces,
    # and 256 such keys pinned 256 MB for the life of the process.
    from answerkit._tables import DIAL, TagMemo
    from answerkit._xmltext import MEMO_MAX_LEN

    memo = TagMemo(DIAL, *DIAL)
    padded = " " * (MEMO_MAX_LEN + 1) + "Bob"
    values = tuple(padded if a.py == "caller_name" else None for a in memo.attrs)
    assert memo.tag(values) == '<Dial callerName="Bob"'
    assert memo.memo == {}
    plain = tuple("Bob" if a.py == "caller_name" else None for a in memo.attrs)
    memo.tag(plain)
    assert list(memo.memo) == [plain]


def test_tag_memo_names_must_follow_the_table() -> None:
    from answerkit._tables import GATHER, TagMemo

    with pytest.raises(ValueError, match="table"):
        TagMemo(GATHER, "num_digits", "action")


# --- Response: rule codes counted as children arrive ------------------------------------------


def test_rules_are_checked_after_add() -> None:
    doc = Response(Speak("a"), Hangup())
    assert doc.to_xml().endswith("<Hangup/></Response>")
    doc.add(Speak("b"))  # now the Hangup is not last
    with pytest.raises(ElementError, match="ends the call"):
        doc.to_xml()
    doc2 = Response(Speak("a"))
    doc2.add(Redirect("https://a.b/next"))
    assert doc2.to_xml().endswith("</Redirect></Response>")
    doc2.add(Hangup())
    with pytest.raises(ElementError, match="must be the last"):
        doc2.to_xml()
    doc3 = Response(Speak("a"))
    doc3.add(Gather(Speak("b")))
    with pytest.raises(ElementError, match="action is required"):
        doc3.to_xml()


def test_a_dial_given_its_number_later_is_valid() -> None:
    dial = Dial(caller_id="+14155551234")
    doc = Response(Speak("hold"), dial)
    with pytest.raises(ElementError, match="needs at least one Number"):
        doc.to_xml()
    dial.add(Number("+14156667890"))
    assert "<Number>+14156667890</Number></Dial></Response>" in doc.to_xml()


def test_subclassed_children_keep_their_rules() -> None:
    class Bye(Hangup):
        __slots__ = ()

    class Say(Speak):
        __slots__ = ()

    assert Response(Say("a"), Bye()).to_xml().endswith("<Speak>a</Speak><Hangup/></Response>")
    with pytest.raises(ElementError, match="ends the call"):
        Response(Bye(), Say("a")).to_xml()


# --- Speak: a never-seen text ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["plain", "a & b", "a < b", "a > b", "<&>", "&amp;", "  padded  ", "é ü 日本"]
)
def test_a_never_seen_text_renders_as_esc_text(text: str) -> None:
    from answerkit._xmltext import esc_text

    # Trimmed (spec §1.0), then escaped; the same on the memo's hit.
    assert str(Speak(text)) == f"<Speak>{esc_text(text.strip())}</Speak>"
    assert str(Speak(text)) == f"<Speak>{esc_text(text.strip())}</Speak>"  # the memo's hit
    assert Speak(text).text == Speak(text).text == text.strip()


def test_speak_once_its_memo_is_full() -> None:
    from answerkit import _speak
    from answerkit._xmltext import esc_text

    # Filled by documents and by Speaks rendered alone.
    for start in range(0, _speak._SPOKEN_LIMIT + 10, 500):
        Response(*[Speak(f"filler {i} & <{i}>") for i in range(start, start + 500)]).to_xml()
    str(Speak("filler, alone"))
    assert _speak._spoken_full
    assert len(_speak._SPOKEN) <= _speak._SPOKEN_LIMIT
    for text in ("new & <fresh> text", "new plain text"):
        assert str(Speak(text)) == f"<Speak>{esc_text(text)}</Speak>"
    for bad in ("", "   ", "bell\x07"):
        with pytest.raises(ElementError):
            Speak(bad)


# --- never-seen plain texts: rendered alike wherever they stand, then remembered -------------


def _fresh(label: str) -> str:
    """A text no memo has seen, with every character that needs escaping."""
    return f"{label} {uuid.uuid4().hex} & <b> \"q\" 'a' ]]>"


def _mixed_children() -> list[Element]:
    """Never-seen Speaks around every other kind of child, twice over."""
    return [
        Speak(_fresh("first")),
        Speak(_fresh("second")),
        Speak("Hello", Break(time="1s"), _fresh("ssml")),
        Speak(_fresh("voiced"), voice="MAN"),
        Play("https://example.com/a.mp3?x=1&y=2"),
        Speak(_fresh("between")),
        Gather(Speak(_fresh("prompt")), Speak(_fresh("prompt 2")), action=URL_A),
        Wait(length=1),
        Speak(_fresh("third")),
        Speak(_fresh("fourth")),
    ]


def test_never_seen_texts_render_as_each_element_alone() -> None:
    children = _mixed_children()
    # Each child rendered on its own, from an equal copy, is the oracle for the document.
    alone = "".join(str(copy.copy(c)) for c in children)
    doc = Response(*children)
    assert doc.to_xml() == f'<?xml version="1.0" encoding="UTF-8"?><Response>{alone}</Response>'
    assert doc.to_xml() == doc.to_xml()  # a second render, and after one child on its own
    str(children[1])
    assert doc.to_xml().endswith(f"{alone}</Response>")
    assert parse(doc.to_xml()) == doc
    assert parse(doc.to_xml(pretty=True)) == doc


def test_a_never_seen_text_reads_like_any_other() -> None:
    text = _fresh("read")
    lazy, rendered = Speak(text), Speak(text)
    str(rendered)
    assert lazy == rendered and lazy.text == text
    assert lazy.attrs == {} and lazy.get("voice") is None
    assert repr(lazy) == repr(rendered) == f"Speak({text!r})"
    assert str(lazy) == str(rendered) == f"<Speak>{esc_text(text)}</Speak>"


def test_a_never_seen_text_added_to_a_gather_renders() -> None:
    g = Gather(action=URL_A)
    first, second = _fresh("added"), _fresh("added too")
    g.add(Speak(first))
    doc = Response(g, Speak(second))
    assert doc.to_xml().endswith(
        f"<Speak>{esc_text(first)}</Speak></Gather><Speak>{esc_text(second)}</Speak></Response>"
    )


def test_a_rendered_text_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    from answerkit import _speak

    monkeypatch.setattr(_speak, "_SPOKEN", {})
    monkeypatch.setattr(_speak, "_spoken_full", False)
    in_run, alone = _fresh("in a run"), _fresh("alone")
    Response(Speak(_fresh("other")), Speak(in_run)).to_xml()
    str(Speak(alone))
    for text in (in_run, alone):
        assert _speak._SPOKEN[text] == f"<Speak>{esc_text(text)}</Speak>"
        assert str(Speak(text)) == _speak._SPOKEN[text]
