"""The spec's limits on VobizXML that are easy to miss: Wait's rule inside PreAnswer, 100 KB on
parse, declared encodings, integer and URL bounds, SSML depth and break times, Speak trimming."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from answerkit._attributes import URL
from answerkit._xmltext import check_url, fast_url, shown
from answerkit.elements import (
    Dial,
    Gather,
    Number,
    Play,
    PreAnswer,
    Redirect,
    Response,
    Speak,
    Stream,
    Wait,
)
from answerkit.errors import ElementError, ParseError
from answerkit.parse import parse
from answerkit.ssml import MAX_DEPTH, Break, Emphasis, P, Prosody, S, SayAs, Sub

DECL = '<?xml version="1.0" encoding="UTF-8"?>'


# --- 1. Wait's minSilence rule inside PreAnswer (spec §1.2 Wait) ------------------------------


def _bad_wait() -> Wait:
    return Wait(silence=True, length=1, min_silence=5000)


def test_wait_rule_applies_inside_preanswer_when_built() -> None:
    doc = Response(PreAnswer(Speak("early"), _bad_wait()), Speak("hi"))
    for render in (doc.to_xml, lambda: doc.to_xml(pretty=True), doc.validate):
        with pytest.raises(ElementError) as caught:
            render()
        assert str(caught.value) == (
            "Wait (child 2 of 2 in PreAnswer, child 1 of 2 in Response): with silence=True, "
            "min_silence (5000 ms) must be less than length x 1000 (1000 ms); raise length or "
            "lower min_silence"
        )
        assert caught.value.element == "Wait"
    # A Wait that keeps the rule is fine there, as is one without silence.
    ok = Response(PreAnswer(Wait(silence=True, length=6, min_silence=5000), Wait(length=1)))
    assert parse(ok.to_xml()) == ok


def test_wait_rule_applies_inside_preanswer_when_parsed() -> None:
    src = (
        "<Response>\n<PreAnswer>\n<Speak>early</Speak>\n"
        '<Wait length="1" silence="true" minSilence="5000"/>\n</PreAnswer>\n</Response>'
    )
    with pytest.raises(ParseError, match=r"Wait \(child 2 of 2 in PreAnswer") as caught:
        parse(src)
    assert caught.value.line == 4  # the Wait's own line
    assert caught.value.element == "Wait"
    compact = src.replace("\n", "")
    with pytest.raises(ParseError, match="min_silence"):
        parse(compact)
    with pytest.raises(ParseError, match="min_silence"):
        parse(DECL + compact)  # the form to_xml writes (the reader without lxml)


def test_a_document_over_the_limit_only_when_indented_says_so() -> None:
    # Pretty output over 100 KB was told to "split it with Redirect" while compact to_xml()
    # of the same document was within the limit.
    doc = Response(*[Gather(Speak("x"), Speak("x"), action="https://a.b/c") for _ in range(1200)])
    compact = len(doc.to_bytes())
    assert compact <= 100_000
    with pytest.raises(ElementError) as caught:
        doc.to_xml(pretty=True)
    assert f"compact, to_xml() is {compact} bytes, within the limit" in str(caught.value)
    assert "Split it with Redirect" not in str(caught.value)


# --- 2. parse() refuses documents over 100 KB (spec §1.0) ---------------------------------------


def test_parse_refuses_documents_over_100_kb() -> None:
    src = "<Response>" + "<Speak>x</Speak>" * 8000 + "</Response>"  # 128021 bytes
    for source in (src, src.encode(), DECL + src, bytearray(src.encode())):
        with pytest.raises(ParseError) as caught:
            parse(source)
        assert "bytes; Vobiz accepts at most 100000 (spec §1.0)" in str(caught.value)
    with pytest.raises(ParseError, match="the document is 128021 bytes"):
        parse(src)
    # Bytes, not characters: 50001 two-byte characters are over the limit.
    wide = "<Response><Speak>" + "é" * 50001 + "</Speak></Response>"
    with pytest.raises(ParseError, match="100000"):
        parse(wide)
    # Up to the limit is fine, counted as to_xml writes it (with the XML declaration): a
    # document read within it must render within it.
    at_limit = DECL + "<Response>" + "<Speak>x</Speak>" * 6246 + "</Response>"  # 99,995 bytes
    doc = parse(at_limit)
    assert len(doc.children) == 6246 and len(doc.to_bytes()) == len(at_limit.encode())


# --- 3. parse(str) ignores the declared encoding --------------------------------------------------


@pytest.mark.parametrize(
    "decl",
    [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        "<?xml version='1.0' encoding='latin-1'?>",
        '<?xml version="1.0" encoding="UTF-16"?>',
        '<?xml version = "1.0"\n  encoding = "windows-1252" standalone="yes"?>',
        '\ufeff<?xml version="1.0" encoding="ISO-8859-1"?>',
        '<?xml version="1.0" encoding="utf-8"?>',
        '<?xml version="1.0"?>',
    ],
)
def test_parse_of_str_ignores_the_declared_encoding(decl: str) -> None:
    doc = parse(decl + "<Response><Speak>café ü 日本</Speak></Response>")
    assert doc == Response(Speak("café ü 日本"))


def test_parse_of_bytes_still_follows_the_declared_encoding() -> None:
    src = '<?xml version="1.0" encoding="ISO-8859-1"?><Response><Speak>café</Speak></Response>'
    assert parse(src.encode("latin-1")) == Response(Speak("café"))


# --- 4. Int attributes: building and parsing accept the same values --------------------------


@pytest.mark.parametrize("value", [1, 10**12, 10**18, 2**63 - 1])
def test_unbounded_int_round_trips(value: int) -> None:
    doc = Response(Dial(Number("+14155551234"), time_limit=value), Speak("hi", loop=value))
    assert parse(doc.to_xml()) == doc
    assert parse(doc.to_xml(pretty=True)) == doc


def test_int_over_the_bound_is_refused_both_ways() -> None:
    with pytest.raises(ElementError, match=r"at most 9223372036854775807 \(2\*\*63 - 1\)"):
        Speak("hi", loop=2**63)
    with pytest.raises(ParseError, match=r"loop must be an integer >= 0 and at most"):
        parse('<Response><Speak loop="9223372036854775808">hi</Speak></Response>')
    with pytest.raises(ParseError, match="loop must be an integer >= 0"):
        parse('<Response><Speak loop="' + "9" * 5000 + '">hi</Speak></Response>')


def test_int_leading_zeros_parse_to_the_canonical_form() -> None:
    for text, value in (("0000000000001", 1), ("007", 7), ("0" * 40, 0), ("0" * 30 + "12", 12)):
        doc = parse(f'<Response><Play loop="{text}">https://a.b/c.mp3</Play></Response>')
        assert doc == Response(Play("https://a.b/c.mp3", loop=value))
        assert f'loop="{value}"' in doc.to_xml()
    with pytest.raises(ParseError, match="from 1 to 32"):
        parse('<Response><Gather action="https://a.b" numDigits="00000000000033"/></Response>')


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-5, max_value=2**64), st.integers(0, 3))
def test_int_build_and_parse_agree(value: int, zeros: int) -> None:
    try:
        built: str | None = Speak("hi", loop=value).get("loop")
    except ElementError:
        built = None
    text = "0" * zeros + str(value)
    try:
        read: str | None = parse(f'<Response><Speak loop="{text}">hi</Speak></Response>')
        read = read.children[0].get("loop")  # type: ignore[union-attr]
    except ParseError:
        read = None
    assert built == read


# --- 5. Huge ints raise ElementError, with a bounded message ----------------------------------


@pytest.mark.parametrize(
    ("make", "element"),
    [
        (lambda: Wait(length=10**5000), "Wait"),
        (lambda: Speak("hi", loop=10**5000), "Speak"),
        (lambda: Gather(action="https://a", num_digits=10**5000), "Gather"),
        (lambda: Number(10**5000), "Number"),
        (lambda: Play(10**5000), "Play"),
        (lambda: Speak(10**5000), "Speak"),
        (lambda: Response(10**5000), "Response"),
        (lambda: Gather(action="https://a", hints=[10**5000]), "Gather"),
        (lambda: Speak("a", Emphasis(10**5000)), "emphasis"),
    ],
)
def test_huge_ints_raise_element_error(make: Any, element: str) -> None:
    with pytest.raises(ElementError) as caught:
        make()
    message = str(caught.value)
    assert message.startswith(element + ":")
    assert len(message) < 600
    assert "an integer of about 5001 digits" in message or "cannot be shown" in message


def test_shown_is_bounded() -> None:
    assert shown(12) == "12"
    assert shown("a") == "'a'"
    assert shown(10**5000) == "<an integer of about 5001 digits>"
    assert shown([10**5000]) == "<a list that cannot be shown>"
    long = shown("x" * 100_000)
    # The string's own length, not its repr's (two quotes more)
    assert len(long) < 250 and long.endswith("(100000 characters in all)")
    with pytest.raises(ElementError) as caught:
        Gather(action="https://a", hints="x" * 20_000)
    assert len(str(caught.value)) < 600


# --- 6. SSML nesting is capped ----------------------------------------------------------------


def _nest(n: int) -> Any:
    e: Any = "x"
    for _ in range(n):
        e = Emphasis(e)
    return e


def test_ssml_nesting_up_to_the_cap_round_trips() -> None:
    doc = Response(Gather(Speak(_nest(MAX_DEPTH)), action="https://a.b/g"))
    assert parse(doc.to_xml()) == doc
    assert parse(doc.to_xml(pretty=True)) == doc
    mixed = Speak(P(S("a", Prosody(Emphasis(SayAs("1", interpret_as="digits")), rate="slow"))))
    assert parse(Response(mixed).to_xml()) == Response(mixed)


def test_ssml_nesting_over_the_cap_is_an_element_error() -> None:
    deep = _nest(MAX_DEPTH)
    message = "emphasis: SSML may nest at most 32 levels deep, got 33 levels"
    with pytest.raises(ElementError, match=message):
        Emphasis(deep)
    with pytest.raises(ElementError, match="at most 32 levels"):
        _nest(1200)  # stops at level 33: no RecursionError


def test_parse_of_ssml_over_the_cap() -> None:
    src = (
        "<Response>\n<Speak>\n" + "<emphasis>" * 40 + "x" + "</emphasis>" * 40
        + "</Speak></Response>"
    )  # fmt: skip
    with pytest.raises(ParseError, match="at most 32 levels deep") as caught:
        parse(src)
    assert caught.value.line == 3
    beyond_lxml = "<Response><Speak>" + "<s>" * 300 + "x" + "</s>" * 300 + "</Speak></Response>"
    with pytest.raises(ParseError, match=r"more than 256 levels deep.*at most 32"):
        parse(beyond_lxml)


# --- 7. Break time: digits, then 'ms' or 's' ----------------------------------------------------


@pytest.mark.parametrize("bad", ["5x", "9m", "50%", "5", "s", "ms", "5 s", "5sms", "5S", "11s",
                                 "10001ms", "٣s", "-1s", "1.5s", "500msx"])  # fmt: skip
def test_break_time_refuses_other_units(bad: str) -> None:
    with pytest.raises(ElementError, match=f"break: time must be a pause .*got '{bad}'"):
        Break(time=bad)
    with pytest.raises(ParseError, match="break: time must be a pause"):
        parse(f'<Response><Speak>a<break time="{bad}"/></Speak></Response>')


@pytest.mark.parametrize("good", ["0s", "5s", "10s", "500ms", "10000ms", "05s"])
def test_break_time_accepts_ms_and_s(good: str) -> None:
    doc = Response(Speak("a", Break(time=good)))
    assert parse(doc.to_xml()) == doc


# --- 8. URLs need a host ------------------------------------------------------------------------


_NO_HOST = ["https://:443/x.mp3", "https://@/x.mp3", "https://:", "https:///x.mp3", "https://",
            "https://user@:80/x", "https://a@/x", "https://[]/x", "https://[::1/x", "https://?q",
            "https://#f", " https://:443 "]  # fmt: skip
_NO_PORT = ["https://a:xyz/x.mp3", "https://a:99999/x", "https://a:65536", "https://[::1]x/y",
            "https://a:-1/x", "https://a:\uff18\uff10/x"]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "says"), [(u, "URL") for u in _NO_HOST] + [(u, "port") for u in _NO_PORT]
)
def test_url_without_a_host_or_with_a_port_that_is_no_port_is_refused(url: str, says: str) -> None:
    wss = url.replace("https", "wss")
    for make in (Play, Redirect, lambda u: Gather(action=u), lambda u: Stream(wss)):
        with pytest.raises(ElementError, match=says):
            make(url)
    with pytest.raises(ParseError):
        parse(f"<Response><Play>{url}</Play></Response>")


@pytest.mark.parametrize(
    "url",
    ["https://a", "https://a:443/x", "https://a:/x", "https://user:pw@host/x", "https://@host/x",
     "https://[::1]:8080/x", "https://a#frag", "https://a?q=1&r=2", "http://a.b/c;d",
     "https://ü.example/ä.mp3"],
)  # fmt: skip
def test_url_with_a_host_is_accepted(url: str) -> None:
    doc = Response(Play(url), Redirect(url))
    assert parse(doc.to_xml()) == doc


class _Owner:
    def fail(self, value: object, allowed: str | None = None) -> Any:
        raise ElementError(f"bad {value!r}")


_URLISH = st.text(alphabet=":/@?#[]a.19%&=- ", max_size=12).map(lambda s: "https://" + s)


@settings(max_examples=2000, deadline=None)
@given(_URLISH)
def test_fast_url_only_says_yes_to_what_the_full_check_accepts(url: str) -> None:
    fast = fast_url(("https", "http"))
    if fast(url) is not None:
        assert check_url(_Owner(), url, ("https://", "http://")) == url
    attr = URL("action")
    attr.element = "Gather"
    try:
        full: str | None = check_url(_Owner(), url, ("https://", "http://"))
    except ElementError:
        full = None
    try:
        parsed: str | None = attr.parse(url)
    except ElementError:
        parsed = None
    assert parsed == full


# --- 9. Speak text is trimmed (spec §1.0 Whitespace) -----------------------------------------


def test_plain_speak_text_is_trimmed() -> None:
    for make in (lambda: Speak("  Hello \n"), lambda: Speak("\tHello"), lambda: Speak("Hello ")):
        s = make()
        assert s.text == "Hello"
        assert str(s) == "<Speak>Hello</Speak>"
        assert s == Speak("Hello")
    # Twice, so the second comes from the memo.
    assert Speak(" again ").text == Speak(" again ").text == "again"
    assert str(Speak(" a & b ", voice="MAN")) == '<Speak voice="MAN">a &amp; b</Speak>'
    assert Speak("a  b").text == "a  b"  # inner whitespace kept
    with pytest.raises(ElementError, match="text is required"):
        Speak(" \n\t ")


def test_ssml_speak_content_is_trimmed_at_its_ends() -> None:
    s = Speak("  Hi ", Break(time="1s"), " there \n")
    assert s.ssml == ["Hi ", Break(time="1s"), " there"]
    assert s.text == "Hi  there"
    assert Speak(" ", Emphasis("x"), "\n").ssml == [Emphasis("x")]
    # Inside SSML nodes nothing is trimmed.
    assert Speak(Emphasis(" x ")).ssml == [Emphasis(" x ")]


def test_pretty_printed_speak_parses_to_trimmed_text() -> None:
    assert parse("<Response><Speak>\n  Hello\n</Speak></Response>") == Response(Speak("Hello"))
    assert parse(
        '<Response>\n  <Speak voice="MAN">\n    Hello\n  </Speak>\n</Response>'
    ) == Response(Speak("Hello", voice="MAN"))
    assert parse(
        '<Response><Gather action="https://a.b"><Speak>\n  Press <break time="1s"/> 1\n'
        "</Speak></Gather></Response>"
    ) == Response(Gather(Speak("Press ", Break(time="1s"), " 1"), action="https://a.b"))
    assert parse("<Response><Speak>\n Hello \n</Speak></Response>").to_xml() == (
        DECL + "<Response><Speak>Hello</Speak></Response>"
    )


# --- 10. SSML errors carry the line of the offending node ----------------------------------


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("<break time='99s'/>", "break: time must be"),
        ("<say-as>x</say-as>", "say-as: interpret_as"),
        ("<emphasis level='loud'>x</emphasis>", "emphasis: level must be"),
        ("<p><s>\n<w role='x'>y</w></s></p>", "w: role must be"),
        ("<prosody rate='fast' color='red'>x</prosody>", "unknown attribute 'color'"),
    ],
)
def test_ssml_errors_carry_the_nodes_line(node: str, message: str) -> None:
    src = f"<Response>\n<Speak>\nLine three\nline four\n{node}</Speak></Response>"
    with pytest.raises(ParseError, match=message) as caught:
        parse(src)
    assert caught.value.line == 5 + node.count("\n")


# --- 11. No {{placeholders}} in free-text attributes (spec §1.0 Placeholders) -----------------


@pytest.mark.parametrize(
    ("make", "src"),
    [
        (
            lambda: Dial(Number("+14156667890"), caller_name="{{name}}"),
            '<Dial callerName="{{name}}"><Number>+14156667890</Number></Dial>',
        ),
        (
            lambda: Dial(Number("+14156667890"), caller_name="Acme }}"),
            '<Dial callerName="Acme }}"><Number>+14156667890</Number></Dial>',
        ),
        (
            lambda: Gather(action="https://a.b", hints="yes,{{product}}"),
            '<Gather action="https://a.b" hints="yes,{{product}}"/>',
        ),
        (
            lambda: Gather(action="https://a.b", hints=["yes", "{{product}}"]),
            '<Gather action="https://a.b" hints="yes,{{product}}"/>',
        ),
        (
            lambda: Speak(Sub("WHO", alias="{{org}}")),
            '<Speak><sub alias="{{org}}">WHO</sub></Speak>',
        ),
    ],
)
def test_placeholders_in_text_attributes_are_refused(make: Any, src: str) -> None:
    # Vobiz never expands {{x}} in attributes; a URL with one was refused already, and the
    # free-text attributes (callerName, hints, SSML alias/ph) are refused the same way,
    # built or parsed, rather than read out or shown to the callee as written.
    with pytest.raises(ElementError, match="placeholders"):
        make()
    with pytest.raises(ParseError, match="placeholders"):
        parse(f"<Response>{src}</Response>")
    # A single brace is not a placeholder.
    assert Dial(Number("+14156667890"), caller_name="Acme {EU}").get("callerName") == "Acme {EU}"


@pytest.mark.parametrize("number", ["+6834002", "+2904567"])
def test_the_shortest_e164_numbers_in_service_are_taken(number: str) -> None:
    """Niue and Saint Helena numbers have seven digits with the country code; E.164 sets no
    minimum, and 7 is the shortest in service (the webhook side normalises from 7 too)."""
    assert (
        parse(Response(Dial(Number(number), caller_id=number)).to_xml()).to_xml().count(number) == 2
    )
    with pytest.raises(ElementError):
        Number("+683400")
