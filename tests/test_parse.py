"""answerkit.parse: VobizXML text back to the typed tree, with the same checks."""

from __future__ import annotations

import gc
import importlib
import pickle
import random
import types
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from answerkit._element import MAX_BYTES
from answerkit.elements import (
    DTMF,
    Conference,
    Dial,
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
from answerkit.parse import FOREIGN, parse, parse_full
from answerkit.query import dialed_numbers, spoken_text
from answerkit.ssml import Break, Lang, Prosody, SayAs

DECL = '<?xml version="1.0" encoding="UTF-8"?>'

TRANSFER = (
    "<Response><Speak>Please hold while we transfer your call.</Speak>"
    '<Dial callerId="+14155551234"><Number>+14156667890</Number></Dial></Response>'
)


def test_transfer_document_from_the_spec() -> None:
    doc = parse(TRANSFER)
    assert doc == Response(
        Speak("Please hold while we transfer your call."),
        Dial(Number("+14156667890"), caller_id="+14155551234"),
    )
    assert doc.to_xml() == DECL + TRANSFER
    assert dialed_numbers(doc) == ["+14156667890"]
    assert spoken_text(doc) == ["Please hold while we transfer your call."]


def test_documentation_style_layout() -> None:
    # The docs put room names, URLs and SIP URIs on indented lines of their own.
    text = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <Record recordSession="true" action="https://example.com/rec" redirect="false" />
    <Dial callerId="+14155551234" timeout="30">
        <User>
            sip:alice1234@registrar.vobiz.ai
        </User>
    </Dial>
    <Conference stayAlone="true">
        support-room
    </Conference>
    <Stream bidirectional="true" keepCallAlive="true">
        wss://stream.example.com/ws
    </Stream>
</Response>
"""
    doc = parse(text)
    assert doc == Response(
        Record(action="https://example.com/rec", redirect=False, record_session=True),
        Dial(User("sip:alice1234@registrar.vobiz.ai"), caller_id="+14155551234", timeout=30),
        Conference("support-room", stay_alone=True),
        Stream("wss://stream.example.com/ws", bidirectional=True, keep_call_alive=True),
    )
    # Attributes given out of table order come back in table order.
    assert '<Record action="https://example.com/rec" redirect="false" recordSession="true"/>' in (
        doc.to_xml()
    )


def test_bytes_and_str_inputs() -> None:
    assert parse(TRANSFER.encode()) == parse(TRANSFER) == parse(DECL + TRANSFER)
    assert parse(bytearray((DECL + TRANSFER).encode())) == parse(TRANSFER)
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><Response><Speak>Grüße</Speak></Response>'
    assert parse(utf16.encode("utf-16")) == Response(Speak("Grüße"))


def test_non_text_input() -> None:
    with pytest.raises(ParseError, match="takes str or bytes"):
        parse(42)  # type: ignore[arg-type]


def test_comments_cdata_and_processing_instructions() -> None:
    doc = parse(
        "<Response><!-- greeting --><Speak>Tom <!-- x -->&amp; <![CDATA[<Jerry>]]></Speak>"
        "<?vobiz ignore?><Hangup/></Response>"
    )
    assert doc == Response(Speak("Tom & <Jerry>"), Hangup())


def test_empty_response() -> None:
    assert parse("<Response/>") == Response()
    assert parse("<Response>\n  \n</Response>") == Response()


@pytest.mark.parametrize(
    "doc",
    [
        Response(),
        Response(Speak("Hello & <goodbye>\r\n", voice="MAN", language="en-IN", loop=0)),
        Response(
            PreAnswer(Speak("early"), Wait(length=2), Play("https://a.b/c.mp3", loop=2)),
            Gather(
                Speak("Press 1"),
                Play("https://a.b/d.wav"),
                action="https://a.b/g?x=1&y=2",
                method="GET",
                input_type="dtmf speech",
                execution_timeout=10,
                digit_end_timeout="auto",
                speech_end_timeout=4,
                finish_on_key="*",
                num_digits=4,
                speech_model="phone_call",
                hints=["yes", "no", "agent please"],
                language="en-IN",
                interim_speech_results_callback="https://a.b/i",
                interim_speech_results_callback_method="POST",
                log=False,
                redirect=True,
                profanity_filter=True,
            ),
            Speak("No input."),
            Redirect("https://a.b/again", method="POST"),
        ),
        Response(
            Record(
                action="https://a.b/r",
                method="POST",
                file_format="wav",
                redirect=False,
                timeout=5,
                max_length=600,
                play_beep=False,
                finish_on_key="#*",
                record_session=True,
                start_on_dial_answer=True,
                transcription_type="hybrid",
                transcription_url="https://a.b/t",
                transcription_method="GET",
                callback_url="https://a.b/c",
                callback_method="GET",
            ),
            Dial(
                Number("+14156667890", send_digits="1w2", send_on_preanswer=True),
                User("sip:agent@example.com", sip_headers="Reason=billing,Team=2"),
                action="https://a.b/d",
                method="GET",
                callback_url="https://a.b/cb",
                callback_method="POST",
                redirect=False,
                caller_id="+14155551234",
                caller_name='Acme "Support" & Co',
                timeout=25,
                time_limit=3600,
                hangup_on_star=True,
                dial_music="real",
                confirm_sound="https://a.b/confirm",
                confirm_key="5",
                confirm_timeout=10,
                digits_match="12,9*",
                digits_match_b_leg="#0",
                sip_headers="ReasonX-VH=transfer",
            ),
            Conference(
                "Room <A> & B",
                muted=False,
                beep=True,
                start_conference_on_enter=True,
                end_conference_on_exit=False,
                max_participants=10,
                stay_alone=True,
                enter_sound="beep:1",
                exit_sound="https://a.b/exit",
                relay_dtmf=True,
                digits_match="0",
                hangup_on_star=False,
                wait_sound="https://a.b/wait",
                wait_method="POST",
                callback_url="https://a.b/conf",
                callback_method="GET",
                record=False,
                record_file_format="mp3",
                time_limit=7200,
                action="https://a.b/left",
                method="POST",
            ),
            DTMF("0123456789*#wW", async_=True),
            Stream(
                "wss://s.example.com/audio?token=a&b=c",
                bidirectional=True,
                audio_track="inbound",
                stream_timeout=600,
                status_callback_url="https://a.b/s",
                status_callback_method="GET",
                content_type="audio/x-l16;rate=16000",
                extra_headers="tenant=acme,call=42",
                max_retries=10,
                keep_call_alive=True,
            ),
            Wait(length=3, silence=True, min_silence=500, beep=False),
            Hangup(reason="rejected", schedule=10),
            Speak("last words", Break(time="1s"), Prosody("slowly", rate="slow")),
        ),
    ],
    ids=["empty", "speak", "ivr", "everything"],
)
def test_round_trip(doc: Response) -> None:
    compact = doc.to_xml()
    assert parse(compact) == doc
    assert parse(compact).to_xml() == compact
    assert parse(doc.to_bytes()) == doc
    assert parse(doc.to_xml(pretty=True)) == doc


def test_ssml_is_parsed() -> None:
    doc = parse(
        '<Response><Speak>Say <say-as interpret-as="digits">123</say-as>, '
        '<lang xml:lang="fr-FR">bonjour</lang><break time="300ms"/>!</Speak></Response>'
    )
    speak = doc.children[0]
    assert isinstance(speak, Speak)
    assert speak.ssml == [
        "Say ",
        SayAs("123", interpret_as="digits"),
        ", ",
        Lang("bonjour", xml_lang="fr-FR"),
        Break(time="300ms"),
        "!",
    ]
    assert speak.text == "Say 123, bonjour!"


def test_out_of_order_attributes_compare_equal() -> None:
    a = parse('<Response><Gather numDigits="1" action="https://a.b" inputType="dtmf"/></Response>')
    assert a == Response(Gather(action="https://a.b", input_type="dtmf", num_digits=1))
    assert '<Gather action="https://a.b" inputType="dtmf" numDigits="1"/>' in a.to_xml()


def test_integers_are_canonical() -> None:
    doc = parse('<Response><Wait length="007"/></Response>')
    assert doc.children[0].get("length") == "7"


# --- errors, with line numbers -------------------------------------------------------------------


def error(text: str | bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ElementError) and isinstance(err, ValueError)
    return err


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("<Response><Speak>x</Speak>", 1, "not well-formed XML"),
        ("<Response>\n<Speak>x</Spek>\n</Response>", 2, "not well-formed"),
        ("<Response/><Response/>", 1, "Extra content"),
        ("", None, "not well-formed"),
        ("<Speak>x</Speak>", 1, "the root must be Response, found Speak: wrap it"),
        ("<Respons/>", 1, "did you mean Response?"),
        (
            "<Response>\n\n<Spaek>x</Spaek></Response>",
            3,
            "unknown element 'Spaek'; did you mean Speak?",
        ),
        ('<Response xmlns="urn:x"/>', 1, "VobizXML uses no namespaces"),
        ('<Response id="1"/>', 1, "Response takes no attributes"),
        ("<Response>hello</Response>", 1, "Response takes no text"),
        ("<Response><Hangup/>\ntrailing</Response>", 2, "outside any element"),
        ("<Response><Hangup>now</Hangup></Response>", 1, "Hangup: takes no text or children"),
        ("<Response><Play><Speak>x</Speak></Play></Response>", 1, "Play: cannot contain Speak"),
        (
            "<Response>\n<Gather>\n<Dial>+14156667890</Dial></Gather></Response>",
            3,
            "Gather: cannot contain Dial",
        ),
        ("<Response><Response/></Response>", 1, "Response nested inside Response"),
        ("<Response><Dial>\n<Record/></Dial></Response>", 2, "spec §6 item 7"),
        (
            "<Response><Dial>+14156667890<Number>+14156667891</Number></Dial></Response>",
            1,
            "not both",
        ),
        (
            "<Response>\n<Number>+14156667890</Number></Response>",
            2,
            "Response: cannot contain Number",
        ),
        (
            '<Response>\n\n\n<Speak loop="-1">x</Speak></Response>',
            4,
            "Speak: loop must be an integer >= 0, got '-1'",
        ),
        (
            '<Response><Gather action="https://a.b" numDigits="40"/></Response>',
            1,
            "from 1 to 32, got '40'",
        ),
        ('<Response><Gather action="https://a.b" numDigits="1.0"/></Response>', 1, "numDigits"),
        (
            '<Response><Gather action="https://a.b" log="True"/></Response>',
            1,
            "log must be 'true' or 'false', got 'True'",
        ),
        ('<Response><Gather action="https://a.b" method="post"/></Response>', 1, "'GET', 'POST'"),
        ('<Response><Gather action="relative/url"/></Response>', 1, "action must be an absolute"),
        (
            '<Response><Gather action="https://a.b" numdigits="3"/></Response>',
            1,
            "unknown attribute 'numdigits'; did you mean numDigits?",
        ),
        ('<Response><Speak foo="1">x</Speak></Response>', 1, "Speak: unknown attribute 'foo'"),
        (
            '<Response><Speak xml:lang="fr-FR">x</Speak></Response>',
            1,
            "unknown attribute 'xml:lang'",
        ),
        ("<Response>\n<Number>x</Number></Response>", 2, "Response: cannot contain Number"),
        (
            "<Response><Dial><Number>14156667890</Number></Dial></Response>",
            1,
            "add the leading '+'",
        ),
        ("<Response><Dial>\n<User>agent@example.com</User></Dial></Response>", 2, "SIP URI"),
        ("<Response><Speak>  </Speak></Response>", 1, "Speak: text is required"),
        ("<Response><Speak/></Response>", 1, "Speak: text is required"),
        ("<Response><Play/></Response>", 1, "Play: text must be"),
        ("<Response><Stream>https://a.b</Stream></Response>", 1, "wss://"),
        ("<Response><DTMF>12x</DTMF></Response>", 1, "DTMF"),
        (
            "<Response><Speak>a<b>bold</b></Speak></Response>",
            1,
            "'b' is not SSML that Speak accepts",
        ),
        ('<Response><Speak>a<break time="20s"/></Speak></Response>', 1, "at most 10 seconds"),
        ("<Response><Speak>a<break>x</break></Speak></Response>", 1, "break: takes no content"),
        ("<Response><Speak><sub>x</sub></Speak></Response>", 1, "sub: alias (alias) is required"),
        ("<Response><Speak><say-as>1</say-as></Speak></Response>", 1, "interpret-as) is required"),
        (
            "<Response><Speak><s><p>x</p></s></Speak></Response>",
            1,
            "s: content must be text or SSML",
        ),
        ("<Response><Speak>&#1;</Speak></Response>", 1, "not well-formed"),
    ],
)
def test_errors_name_the_line(text: str, line: int | None, message: str) -> None:
    err = error(text)
    assert message in str(err)
    if line is not None:
        assert err.line == line
        assert str(err).startswith(f"line {line}: ")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "<Response>\n<Hangup/>\n<Speak>x</Speak></Response>",
            2,
            "Hangup (child 1 of 2 in Response)",
        ),
        (
            "<Response>\n<Redirect>https://a.b</Redirect>\n<Hangup/></Response>",
            2,
            "must be the last",
        ),
        ("<Response>\n<Speak>x</Speak>\n<PreAnswer/></Response>", 3, "must be the first child"),
        ("<Response>\n\n<Gather/></Response>", 3, "action is required"),
        ("<Response>\n<Dial/></Response>", 2, "needs at least one Number or User"),
        (
            '<Response>\n<Stream bidirectional="true" audioTrack="both">wss://a.b</Stream></Response>',
            2,
            "audio_track 'inbound'",
        ),
        (
            '<Response><Stream keepCallAlive="true">wss://a.b</Stream></Response>',
            1,
            "needs bidirectional=True",
        ),
        ('<Response><Wait silence="true"/></Response>', 1, "min_silence (2000 ms)"),
    ],
)
def test_document_rules_name_the_line(text: str, line: int, message: str) -> None:
    err = error(text)
    assert message in str(err)
    assert err.line == line


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_plivo_and_twiml_names_are_refused_with_the_replacement(name: str) -> None:
    err = error(f"<Response>\n<{name}/></Response>")
    assert err.line == 2
    assert f"{name} is not VobizXML" in str(err)


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("GetDigits", "use Gather"),
        ("GetInput", "use Gather"),
        ("MultiPartyCall", "use Conference"),
        ("Message", "no equivalent"),
        ("AudioStream", "use Stream"),
        ("Say", "use Speak"),
        ("Pause", "use Wait"),
        ("Sip", "User inside Dial"),
    ],
)
def test_replacements(name: str, replacement: str) -> None:
    assert replacement in str(error(f"<Response><{name}/></Response>"))


@pytest.mark.parametrize(
    ("attribute", "replacement"),
    [
        ('Gather action="https://a.b" timeout="5"', "no timeout attribute on Gather"),
        ('Gather action="https://a.b" type="dtmf"', "use input_type (inputType)"),
        ('Gather action="https://a.b" digitTimeout="5"', "use digit_end_timeout (digitEndTimeout)"),
        ('Conference maxMembers="5"', "use max_participants (maxParticipants)"),
    ],
)
def test_renamed_attributes(attribute: str, replacement: str) -> None:
    err = error(f"<Response><{attribute}>x</{attribute.split()[0]}></Response>")
    assert replacement in str(err)
    if "timeout" in attribute:
        assert "executionTimeout" in str(err)


@pytest.mark.parametrize(
    ("element", "attribute"),
    [
        ('Gather action="https://a.b"', "playBeep"),
        ('Gather action="https://a.b"', "retries"),
        ('Gather action="https://a.b"', "validDigits"),
        ('Gather action="https://a.b"', "invalidDigitsSound"),
        ("Conference", "floorEvent"),
        ("Conference", "redirect"),
        ("Conference", "recordWhenAlone"),
        ("Conference", "sendDigits"),
        ("Conference", "transcriptionType"),
        ("Conference", "transcriptionUrl"),
        ("Conference", "transcriptionMethod"),
        ("Record", "transcriptionReportType"),
        ("Record", "recordChannelType"),
        ("Number", "sendDigitsMode"),
        ("Number", "sipHeaders"),
    ],
)
def test_plivo_only_attributes_are_refused_as_such(element: str, attribute: str) -> None:
    # Spec §1.2 names these as Plivo's, not VobizXML (§6 item 5: sipHeaders on Number). The
    # nearest known name would be the wrong advice: validDigits is not numDigits, and
    # transcriptionReportType is not transcriptionType.
    tag = element.split()[0]
    text = {"Conference": "room", "Number": "+14156667890", "Record": ""}.get(tag, "")
    src = f'<{element} {attribute}="1">{text}</{tag}>'
    if tag == "Number":
        src = f"<Dial>{src}</Dial>"
    err = error(f"<Response>{src}</Response>")
    assert f"{tag}: {attribute} is not VobizXML" in str(err)
    assert "did you mean" not in str(err)
    assert err.attribute == attribute


# --- hardening -----------------------------------------------------------------------------------

XXE = """<?xml version="1.0"?>
<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Response><Speak>&xxe;</Speak></Response>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Response><Speak>&lol4;</Speak></Response>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE Response SYSTEM "http://127.0.0.1:9/evil.dtd">
<Response/>"""


@pytest.mark.parametrize("text", [XXE, BILLION_LAUGHS, EXTERNAL_DTD], ids=["xxe", "laughs", "dtd"])
def test_dtds_and_entities_are_refused(text: str) -> None:
    err = error(text)
    assert "refused" in str(err)
    assert err.line == 2


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_dtd_hidden_in_another_encoding_is_refused_before_lxml_reads_it(codec: str) -> None:
    # Decoded first, so the scan sees the DTD: lxml once opened a file:// DTD of a UTF-16
    # document before the check after parsing could refuse it.
    name = "UTF-8" if codec == "utf-8-sig" else codec.upper()
    text = XXE.replace('version="1.0"', f'version="1.0" encoding="{name}"')
    assert "DTDs and entity declarations are refused" in str(error(text.encode(codec)))


def test_documents_in_other_encodings_are_read_as_declared() -> None:
    doc = Response(Speak("Grüße, ça va"))
    body = "<Response><Speak>Grüße, ça va</Speak></Response>"
    for codec, name in [
        ("latin-1", "ISO-8859-1"),
        ("utf-16", "UTF-16"),
        ("cp1252", "windows-1252"),
    ]:
        assert parse(f'<?xml version="1.0" encoding="{name}"?>{body}'.encode(codec)) == doc
    assert "unknown encoding 'x-nothing'" in str(
        error(b'<?xml version="1.0" encoding="x-nothing"?><Response/>')
    )
    assert "not valid ascii" in str(
        error(('<?xml version="1.0" encoding="ascii"?>' + body).encode())
    )


def test_undeclared_entity_is_refused() -> None:
    assert "not well-formed" in str(error("<Response><Speak>&nbsp;</Speak></Response>"))


def test_parse_error_without_line() -> None:
    err = ParseError("boom")
    assert err.line is None and str(err) == "boom"


def test_dtd_in_utf7_is_refused() -> None:
    # UTF-7 spells '<' as '+ADw-': decoded first, the scan sees the DTD.
    text = (
        '<?xml version="1.0" encoding="UTF-7"?>\n'
        "+ADw-!DOCTYPE Response +AFs-+ADw-!ENTITY x +ACI-boom+ACI-+AD4-+AF0-+AD4-\n"
        "<Response><Speak>x</Speak></Response>"
    )
    assert "refused" in str(error(text.encode("ascii")))


# --- documents as to_xml writes them: read without lxml, the same result as the full path ----

IVR = Response(
    Speak("Welcome & <hello>"),
    Gather(
        Speak("Press 1"),
        action="https://example.com/menu?a=1&b=2",
        input_type="dtmf",
        num_digits=1,
    ),
    Dial("+14156667890"),
    Hangup(),
)


def outcome(text: str) -> str:
    """What parse makes of ``text`` (the rendered document or the error), checked against
    the full path through lxml."""
    try:
        got = parse(text).to_xml()
    except ParseError as e:
        got = f"error line {e.line}: {e}"
    try:
        full = parse_full(text.encode()).to_xml()
    except ParseError as e:
        full = f"error line {e.line}: {e}"
    assert got == full
    return got


def test_canonical_documents_read_the_same_as_the_full_path() -> None:
    xml = IVR.to_xml()
    assert outcome(xml) == xml
    assert parse(xml) == parse_full(xml.encode()) == IVR
    assert parse(xml.encode()) == IVR


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<Response>", '<Response><!DOCTYPE x [<!ENTITY e "boom">]>'),
        ("Press 1", "Press &e;"),
        ("Press 1", "Press &#49;"),
        ("Press 1", "Press <!-- c -->1"),
        ("Press 1", "Press <![CDATA[1]]>"),
        ("Press 1", "Press > 1"),
        ("Press 1", "Press\r\n1"),
        ("Press 1", "Press <break/>1"),
        ("Press 1", "  "),
        ('inputType="dtmf" numDigits="1"', 'numDigits="1" inputType="dtmf"'),
        ('inputType="dtmf"', 'inputType="dtmf"  '),
        ('inputType="dtmf"', 'inputType="dtmf\nspeech"'),
        ('inputType="dtmf"', 'inputType="dtmf" timeout="5"'),
        ('inputType="dtmf"', 'inputType="voice"'),
        ('numDigits="1"', 'numDigits="01"'),
        ("a=1&amp;b=2", "a=1&b=2"),
        ("a=1&amp;b=2", "a=1&#38;b=2"),
        ("<Hangup/>", "<Hangup></Hangup>"),
        ("<Hangup/>", "<Hangup/><Speak>after</Speak>"),
        ("<Hangup/>", "<Hangup/>\n"),
        ("<Hangup/>", "<GetDigits/>"),
        ("<Dial>+14156667890</Dial>", "<Dial><Number>+14156667890</Number></Dial>"),
        ("<Dial>+14156667890</Dial>", "<Dial/>"),
        ("<Dial>+14156667890</Dial>", "<Dial><Record/></Dial>"),
        ("</Gather>", "</Gather></Gather>"),
        ("</Response>", "</Response><Response/>"),
    ],
)
def test_almost_canonical_documents_get_the_full_path_answer(old: str, new: str) -> None:
    xml = IVR.to_xml()
    assert old in xml
    outcome(xml.replace(old, new, 1))


PLAIN = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(PLAIN, PLAIN, st.sampled_from(["&", "<", ">", '"', "&amp;", "\r", "\n", "\t", "x"]))
def test_any_canonical_looking_document_reads_as_the_full_path_does(
    speak: str, url_tail: str, extra: str
) -> None:
    # Documents spliced together from text of any kind: whatever the fast reader makes of
    # them, the full parser makes of them too.
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f"<Speak>{speak}{extra}</Speak>"
        f'<Gather action="https://a.b/{url_tail}{extra}" inputType="dtmf">'
        f"<Speak>{extra}{speak}</Speak></Gather></Response>"
    )
    outcome(xml)


# --- the full path's memo of start tags ----------------------------------------------------------

PRETTY_GATHER = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Record action="https://a.b/x?y=1&amp;z=2" redirect="false"/>
  <Gather action="https://a.b/x?y=1&amp;z=2" numDigits="1" inputType="dtmf">
    <Speak>Press 1.</Speak>
  </Gather>
</Response>
"""


def test_a_start_tag_seen_before_reads_the_same() -> None:
    # The same action on two elements, and a start tag out of table order: the second
    # reading (from the memo) is the first one, in table order, each with its own table.
    want = Response(
        Record(action="https://a.b/x?y=1&z=2", redirect=False),
        Gather(Speak("Press 1."), action="https://a.b/x?y=1&z=2", input_type="dtmf", num_digits=1),
    )
    first, second = parse(PRETTY_GATHER), parse(PRETTY_GATHER.encode())
    assert first == second == want
    assert first.to_xml() == second.to_xml() == want.to_xml()
    assert '<Gather action="https://a.b/x?y=1&amp;z=2" inputType="dtmf" numDigits="1">' in (
        second.to_xml()
    )
    # The attribute dict may be shared with other parsed elements: the API hands out copies.
    second.children[1].attrs["action"] = "changed"
    assert parse(PRETTY_GATHER) == want


def test_a_refused_start_tag_is_refused_every_time() -> None:
    text = '<Response>\n  <Gather action="ftp://a.b" inputType="dtmf"/>\n</Response>'
    for _ in range(2):
        err = error(text)
        assert err.line == 2
        assert err.attribute == "action"
    # The same start tag is refused on another element, where the attribute is unknown.
    err = error('<Response>\n\n  <Hangup action="https://a.b"/>\n</Response>')
    assert err.line == 3
    assert "Hangup: unknown attribute 'action'" in str(err)


def test_the_start_tag_memo_is_bounded() -> None:
    from answerkit._xmltext import MEMO_LIMIT, TAG_MAX_LEN
    from answerkit.parse import _SEEN

    long_url = "https://a.b/" + "x" * TAG_MAX_LEN
    doc = parse(f'<Response>\n  <Redirect method="GET">{long_url}</Redirect>\n</Response>')
    assert doc.children[0].text == long_url
    tail = "\n  <Gather action='https://a.b' inputType='dtmf'/>\n</Response>"
    parse(f"<Response>\n  <Record action='{long_url}'/>{tail}")
    # A long value that renders short is not kept either: the memo's key holds it as read.
    zeros = "0" * TAG_MAX_LEN
    wait = parse(f"<Response>\n  <Wait length='{zeros}7'/>\n</Response>").children[0]
    assert wait.get("length") == "7"
    assert not any(long_url in str(key) or zeros in str(key) for key in _SEEN)
    for i in range(MEMO_LIMIT + 10):
        assert parse(f"<Response>\n  <Record action='https://a.b/{i}'/>{tail}")
    assert len(_SEEN) <= MEMO_LIMIT


def test_errors_inside_containers_name_their_line() -> None:
    text = """<Response>
  <Dial callerId="+14155551234">
    <Number>+14156667890</Number>
    <Number>14156667890</Number>
  </Dial>
</Response>"""
    err = error(text)
    assert err.line == 4
    assert "add the leading '+'" in str(err)
    err = error(
        "<Response>\n  <Gather action='https://a.b'>\n    <Hangup/>\n  </Gather>\n</Response>"
    )
    assert err.line == 3
    assert "Gather: cannot contain Hangup" in str(err)


def test_bytes_that_are_not_utf8_after_a_canonical_start() -> None:
    head = DECL.encode() + b"<Response>"
    err = error(head + b"<Speak>caf\xe9</Speak></Response>")
    assert "not well-formed" in str(err)
    # A UTF-8 byte order mark: not to_xml's start, so the full path reads it.
    assert parse(b"\xef\xbb\xbf" + head + b"<Hangup/></Response>") == Response(Hangup())


def test_a_bare_ampersand_is_named_with_its_fix() -> None:
    with pytest.raises(ParseError, match="must be written &amp;"):
        parse("<Response><Redirect>https://a.example.com/x?a=1&b=2</Redirect></Response>")


def test_an_element_without_its_response_is_told_to_wrap_it() -> None:
    with pytest.raises(ParseError, match=r"found Speak: wrap it, <Response><Speak>"):
        parse("<Speak>Hello.</Speak>")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<Response><!-- no <!DOCTYPE here --><Hangup/></Response>", Response(Hangup())),
        ("<Response><Speak><![CDATA[Say <!ENTITY>]]></Speak></Response>",
         Response(Speak("Say <!ENTITY>"))),
    ],
)  # fmt: skip
def test_a_declaration_written_in_a_comment_or_cdata_is_text(text: str, expected: Response) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '<!-- x --><!DOCTYPE r [<!ENTITY a "b">]><Response/>',
        '<?xml version="1.0"?>\n<!--\n-->\n<!DOCTYPE Response SYSTEM "file:///etc/passwd"><Response/>',
        # A '<!--' inside a processing instruction opens no comment: the DOCTYPE after it
        # was once blanked out with the "comment" up to the next '-->', and expanded.
        '<?xml version="1.0" encoding="UTF-8"?><?x <!-- ?><!DOCTYPE Response [<!ENTITY a '
        '"WOMAN">]><!-- --><Response><Speak voice="&a;">hi</Speak></Response>',
        '<?x <!-- ?><!DOCTYPE Response SYSTEM "file:///etc/passwd"><!-- --><Response/>',
    ],
)
def test_a_real_declaration_after_a_comment_is_still_refused(text: str) -> None:
    with pytest.raises(ParseError, match="DTDs and entity declarations are refused"):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "<Response><Wait>\u00a0</Wait></Response>",
        '<Response><Gather action="https://a.example/m">\u3000</Gather></Response>',
        "<Response><Dial>\u00a0<Number>+14155551234</Number></Dial></Response>",
        "<Response>\u2003<Hangup/></Response>",
    ],
)
def test_only_xml_whitespace_is_ignorable_where_no_text_is_allowed(text: str) -> None:
    # NBSP, U+3000 and the like are text to XML: str.isspace() once let them through where
    # the element takes none, and the text was dropped without a word.
    with pytest.raises(ParseError):
        parse(text)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("<Response>\n  <Speak>Hi</Speak>\n\n\n  stray text\n  <Hangup/>\n</Response>", 5),
        ("<Response>\n  <Speak>Hi</Speak>\n\n\n  stray text\n</Response>", 5),
        ("<Response>\n  <Speak>Hi\nthere</Speak>\n  stray</Response>", 4),
        # lxml drops comments: the lines of one after the text once counted before it.
        (
            "<Response>\n<Speak>a</Speak>\nstray\n<!-- one\ntwo\nthree -->\n<Hangup/>\n</Response>",
            3,
        ),
    ],
)
def test_stray_text_is_reported_on_its_own_line(text: str, line: int) -> None:
    with pytest.raises(ParseError, match=f"line {line}: text 'stray"):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        b'<?xml version="1.0" encoding="undefined"?><Response/>',
        b'<?xml version="1.0" encoding="punycode"?><Response/>',
        b'<?xml version="1.0" encoding="utf-8\x00"?><Response/>',
        b'<?xml version="1.0" encoding="rot13"?><Response/>',
    ],
)
def test_an_encoding_that_is_no_text_encoding_is_a_parse_error(text: bytes) -> None:
    # Python's 'undefined' and 'punycode' codecs raise a bare UnicodeError, a NUL in the
    # name a ValueError: neither is the ParseError parse() promises.
    assert "declares an unknown encoding" in str(error(text))


@pytest.mark.parametrize(
    "text",
    [
        b"<!DOCTYPE " + b"<?" * 49000,
        b"<!DOCTYPE " + b"<!--" * 24500,
        b"<?x?>" * 9000 + b"<!DOCTYPE r>",
    ],
)
def test_many_openers_without_closers_are_read_once(text: bytes) -> None:
    # A scan that looked for each opener's closer from every opener took 18 s on the first.
    assert "DTDs and entity declarations are refused" in str(error(text))


# --- lines read from the source: where an element starts, not where lxml says -------------------

MULTI_LINE_GATHER = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Gather
      action="https://example.com/menu"
      timeout="5"
      inputType="dtmf"
  >
    <Speak>Press 1</Speak>
  </Gather>
</Response>
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # lxml's sourceline is where a start tag ENDS (line 7 here): an attribute's error is
        # told on the attribute's line, any other on the line the element starts on.
        (MULTI_LINE_GATHER, 5, "there is no timeout attribute on Gather"),
        (MULTI_LINE_GATHER.replace('timeout="5"', 'method="PUT"'), 5, "method must be"),
        (
            MULTI_LINE_GATHER.replace("Gather", "GetDigits").replace('timeout="5"', ""),
            3,
            "GetDigits is not VobizXML",
        ),
        ("\n<Speak\n  voice='MAN'\n>x</Speak>", 2, "the root must be Response"),
        ("<Response\n  id='1'\n>\n</Response>", 2, "Response takes no attributes"),
        ("<Response\n>\n\n  hello</Response>", 4, "Response takes no text"),
        ("<Response>\n<Hangup\n/>\n<Speak\n>x</Speak></Response>", 2, "nothing may follow"),
        (
            "<Response>\n<Gather action='https://a.b'>\n<Dial\n\n>+14156667890</Dial>"
            "</Gather></Response>",
            3,
            "Gather: cannot contain Dial",
        ),
        ("<Response><Speak>hi\n<prosody\n\n rate='zz'\n>x</prosody></Speak></Response>", 4,
         "prosody: rate must be"),
        ("<Response><Speak>hi\n<blah\n\n>x</blah></Speak></Response>", 2, "is not SSML"),
        ("<Response><Speak\n voice='MAN'\n xml:lang='en'\n>hi</Speak></Response>", 3,
         "unknown attribute 'xml:lang'"),
        # A value may hold '>' and newlines: the attribute is found by XML's grammar.
        ("<Response>\n<Gather\n action='https://a.b/?x=>'\n\n timeout='5'\n/></Response>", 5,
         "no timeout attribute"),
        ("<Response>\r\n<Gather\r\n action='https://a.b'\r\n timeout='5'\r\n/></Response>", 4,
         "no timeout attribute"),
        (b"\xef\xbb\xbf<Response>\n<Gather\n action='https://a.b'\n timeout='5'\n/></Response>",
         4, "no timeout attribute"),
        (MULTI_LINE_GATHER.replace("UTF-8", "UTF-16").encode("utf-16"), 5,
         "no timeout attribute"),
        # An attribute is found by its namespace, not its local name alone: xmlns:v and
        # another prefix's 'lang' came first and gave their line.
        ('<Response>\n<Speak xmlns:v="urn:v"\n v:v="1">hi</Speak></Response>', 3,
         "unknown attribute '{urn:v}v'"),
        ('<Response>\n<Speak>a<lang xml:lang="en-US"\n q:lang="x" xmlns:q="urn:q">b</lang>'
         "</Speak></Response>", 3, "unknown attribute '{urn:q}lang'"),
        # lxml's own syntax errors count a lone \r as a line end too (libxml2 does not).
        ("<Response>\r<Speak>a</Speak>\r<Zork></Response>", 3, "not well-formed XML"),
    ],
)  # fmt: skip
def test_errors_name_the_line_the_element_or_attribute_starts_on(
    text: str | bytes, line: int, message: str
) -> None:
    err = error(text)
    assert message in str(err)
    assert err.line == line
    assert str(err).startswith(f"line {line}: ")
    # What leaves parse is a plain ParseError, holding nothing of lxml's tree.
    assert type(err) is ParseError
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_a_line_the_source_cannot_give_is_lxmls(monkeypatch: pytest.MonkeyPatch) -> None:
    # The source is read again only to find the true line: if that fails, for any reason,
    # the error keeps lxml's line (the end of the start tag) rather than raising another.
    def broken(*args: object) -> int | None:
        raise RuntimeError("boom")

    # Patched in _parse_lines, where _TreeError.located looks it up.
    monkeypatch.setattr(importlib.import_module("answerkit._parse_lines"), "_source_line", broken)
    err = error(MULTI_LINE_GATHER)
    assert type(err) is ParseError
    assert err.line == 7 and "there is no timeout attribute on Gather" in str(err)
    assert error("<Response><Speak>a</Speak><!--\n\n-->stray</Response>").line == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # Each once counted from a re-serialisation of the tree, which has other newlines:
        # a character reference is one character, comments and PIs are not kept.
        ("<Response><Speak>a&#10;b&#10;c&#10;d</Speak>stray</Response>", 1),
        ("<Response><Speak>a</Speak>&#10;&#10;stray</Response>", 1),
        ("<Response><Speak>a</Speak><!--\n\n-->stray</Response>", 3),
        ("<Response><Gather action='https://a.b'><!--\n\n\n--><Speak>x</Speak></Gather>"
         "stray</Response>", 4),
        ("<Response><Gather action='https://a.b'><?pi\n\n\n?><Speak>x</Speak></Gather>"
         "stray</Response>", 4),
        ("<Response>\n<Speak\n voice='MAN'\n>hi</Speak>\n\n stray</Response>", 6),
        ("<Response>\n<Speak>x</Speak><![CDATA[\n\n stray]]></Response>", 4),
    ],
)  # fmt: skip
def test_stray_text_is_reported_on_its_source_line(text: str, line: int) -> None:
    with pytest.raises(ParseError, match=f"^line {line}: text 'stray"):
        parse(text)


# --- a document must render within the limit, not only be within it ---------------------------

_QUOTES = ",".join(['"' * 100] * 99)  # hints: 99 phrases of 100 quotes, 9,999 characters


@pytest.mark.parametrize(
    "body",
    [
        "<Speak>" + ">" * 90_000 + "</Speak>",  # '>' renders as &gt;
        "<Speak><![CDATA[" + "<&" * 45_000 + "]]></Speak>",  # &lt; and &amp;
        # '"' in a single-quoted value renders as &quot;, 6 bytes: 20 KB is enough.
        2 * f"<Gather action='https://a.b' inputType='speech' hints='{_QUOTES}'/>",
    ],
)
def test_a_document_that_renders_over_the_limit_is_refused(body: str) -> None:
    # to_xml would refuse to write it (ElementError): parse refuses to read it.
    text = f"<Response>{body}</Response>"
    assert len(text.encode()) <= MAX_BYTES
    for source in (text, text.encode()):
        err = error(source)
        assert "renders as" in str(err) and "escapes more" in str(err)
        assert isinstance(err.value, int) and err.value > MAX_BYTES


def test_a_large_document_that_renders_within_the_limit_is_read() -> None:
    for text in (
        "<Response><Speak>" + ">" * 24_000 + "</Speak></Response>",
        f"<Response><Gather action='https://a.b' inputType='speech' hints='{_QUOTES}'/></Response>",
    ):
        doc = parse(text)
        assert len(doc.to_bytes()) <= MAX_BYTES
        assert parse(doc.to_xml()) == doc


# --- decode errors: the input's byte offset, and the line ---------------------------------------

_UTF16_HEAD = '<?xml version="1.0" encoding="UTF-16"?>\n<Response>\n<Speak>x'


@pytest.mark.parametrize(
    ("data", "bad", "reason"),
    [
        (b'<?xml version="1.0" encoding="ascii"?>\n<Response>\n<Speak>caf\xe9</Speak>'
         b"</Response>", b"\xe9", "not valid ascii"),
        (b'<?xml version="1.0" encoding="shift_jis"?>\n<Response>\n<Speak>\x81\xff</Speak>'
         b"</Response>", b"\x81\xff", "not valid shift_jis"),
        # After a byte order mark: the offset counts it.
        (b"\xff\xfe" + _UTF16_HEAD.encode("utf-16-le") + b"\x00\xd8"
         + "</Speak></Response>".encode("utf-16-le"), b"\x00\xd8", "illegal UTF-16 surrogate"),
    ],
)  # fmt: skip
def test_a_decode_error_names_its_line_and_input_byte(data: bytes, bad: bytes, reason: str) -> None:
    err = error(data)
    assert reason in str(err)
    assert err.line == 3
    assert str(err).endswith(f" at byte {data.index(bad)}")


@pytest.mark.parametrize(
    "name", ["unicode_escape", "raw_unicode_escape", "u8", "latin-1", "8859", "utf-8-sig"]
)
def test_an_encoding_name_only_python_knows_is_refused(name: str) -> None:
    # Decoded with Python's codec, '\n' in a Speak's text became a line end under
    # unicode_escape; lxml (and so the simulator's judge, and Vobiz) refuses every one.
    text = f'<?xml version="1.0" encoding="{name}"?><Response><Speak>C:\\new</Speak></Response>'
    err = error(text.encode("ascii"))
    assert f"declares an unknown encoding {name!r}" in str(err) and err.line == 1
    assert parse(text.replace(name, "ISO-8859-1").encode("ascii")) == Response(Speak("C:\\new"))


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf\xef\xbb\xbf<Response/>", "\ufeff<Response/>".encode("utf-16")],
    ids=["utf-8", "utf-16"],
)
def test_a_second_byte_order_mark_is_refused(data: bytes) -> None:
    # Re-encoded as UTF-8, the second mark read as a mark again and the document passed;
    # lxml and parse() of the same str refuse it.
    assert "a second byte order mark" in str(error(data))
    assert parse(b"\xef\xbb\xbf<Response/>") == Response()  # one mark: read


def test_errors_about_a_name_carry_the_element_attribute_and_value() -> None:
    # Left empty for a foreign attribute or element while a bad value filled all three;
    # callers (the simulator's judge) read them.
    err = error('<Response><Gather action="https://a.b/c" timeout="5"/></Response>')
    assert (err.element, err.attribute, err.value) == ("Gather", "timeout", "5")
    err = error('<Response foo="1"/>')
    assert (err.element, err.attribute, err.value) == ("Response", "foo", "1")
    for text, tag in [
        ("<Response><GetDigits/></Response>", "GetDigits"),
        ("<Say>hi</Say>", "Say"),
        ("<Response><Speak>a<foo/></Speak></Response>", "foo"),
        ("<Response><Respons/></Response>", "Respons"),
    ]:
        err = error(text)
        assert err.element == tag and err.attribute is None, text


def test_an_empty_speak_is_told_as_empty_text() -> None:
    err = error('<Response><Speak voice="MAN"></Speak></Response>')
    assert "got ''" in str(err) and err.value == ""


def test_an_unknown_encoding_and_a_lone_surrogate_name_their_line() -> None:
    assert error(b'<?xml version="1.0" encoding="x-nothing"?>\n<Response/>').line == 1
    # UTF-7 decodes '+2AA-' to a lone surrogate, which UTF-8 cannot carry.
    text = b'<?xml version="1.0" encoding="utf-7"?>\n<Response>\n<Speak>+2AA-</Speak></Response>'
    err = error(text)
    assert "lone surrogate" in str(err) and err.line == 3


# --- names expat refuses, line ends other than \n -------------------------------------------

_GATHER_TIMEOUT = '\n<Gather\n action="https://a.b"\n timeout="5"\n/></Response>'


@pytest.mark.parametrize("name", ["xmlns:\u2160", "xmlns:x\u2070", "xmlns:x\U00010000"])
@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (_GATHER_TIMEOUT, 4, "no timeout attribute"),
        ("\n<Speak>a</Speak>\n<Zork\n\n/></Response>", 3, "unknown element 'Zork'"),
        ("<Speak>a</Speak><!--\n\n-->stray</Response>", 3, "text 'stray' outside"),
    ],
)
def test_a_name_lxml_takes_but_expat_refuses_keeps_the_true_line(
    name: str, body: str, line: int, message: str
) -> None:
    # XML 1.0 fifth-edition name characters (U+2160, U+2070, astral ones) are names to
    # lxml, not to expat: the line was once found by a second pass through expat, which
    # stopped at the first of them, so every error fell back to lxml's line.
    text = f'<Response {name}="urn:x">{body}'
    for source in (text, text.encode()):
        err = error(source)
        assert message in str(err)
        assert err.line == line


@pytest.mark.parametrize(
    ("source", "line"),
    [
        # A decode error: the text before it is counted once decoded.
        (b'<?xml version="1.0" encoding="ascii"?>\r<Response>\r<Speak>caf\xe9</Speak>'
         b"</Response>", 3),
        (b'<?xml version="1.0" encoding="ascii"?>\r\n<Response>\r\n<Speak>caf\xe9</Speak>'
         b"</Response>", 3),
        # A lone surrogate, in a str or decoded from UTF-7.
        ("<Response>\r<Speak>\r\ud800</Speak></Response>", 3),
        ("<Response>\r\n\r\n<Speak>\ud800</Speak></Response>", 3),
        (b'<?xml version="1.0" encoding="utf-7"?>\r<Response>\r<Speak>+2AA-</Speak></Response>',
         3),
        # The DTD refused before lxml reads the document.
        ('<?xml version="1.0"?>\r<!DOCTYPE Response [\r<!ENTITY x "y">]>\r<Response/>', 2),
        # An element's and an attribute's line, found in the source.
        ("<Response>\r<Gather\r action='https://a.b'\r timeout='5'\r/></Response>", 4),
        ("<Response>\r<Speak>a</Speak>\r\r stray</Response>", 4),
    ],
)  # fmt: skip
def test_a_carriage_return_alone_ends_a_line(source: str | bytes, line: int) -> None:
    # XML ends a line with \r\n, \r or \n, each once: a document written with \r alone
    # (old Mac style) was told line 1 for everything.
    assert error(source).line == line


# --- what leaves parse holds nothing of lxml's ---------------------------------------------


def _reachable(start: object) -> Iterator[object]:
    """Every object reachable from exception ``start`` through what it keeps: its context
    and cause, its arguments and attributes, its traceback's frames and their locals. Not
    through modules, classes or functions: they reach everything loaded."""
    seen: set[int] = set()
    todo = [start]
    while todo:
        obj = todo.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, (types.ModuleType, type, types.FunctionType, types.CodeType)):
            continue
        if isinstance(obj, BaseException):
            todo += [obj.__context__, obj.__cause__, obj.__traceback__, *obj.args]
            todo += vars(obj).values()
        elif isinstance(obj, types.TracebackType):
            todo += [obj.tb_next, obj.tb_frame]
        elif isinstance(obj, types.FrameType):
            todo += obj.f_locals.values()
        else:
            todo += gc.get_referents(obj)


@pytest.mark.parametrize(
    "text",
    [
        MULTI_LINE_GATHER,  # an attribute
        "<Response>\n<Zork/></Response>",  # an element
        "<Response><Speak>a</Speak>stray</Response>",  # a tail
        "<Response><Hangup/><Speak>x</Speak></Response>",  # a document rule
        "<Response><Speak>x</Speak>",  # lxml's own error
    ],
)
def test_the_error_that_leaves_parse_holds_nothing_of_lxmls_tree(text: str) -> None:
    # An error kept (by a log handler, in a list of failures) must not keep the tree alive:
    # raised inside an except block, its __context__ was the error about lxml's element.
    try:
        parse(text)
    except ParseError as e:
        err = e
    else:
        raise AssertionError("parsed")
    assert err.__context__ is None
    assert not any(isinstance(o, etree._Element) for o in _reachable(err))


# --- the size once encoded as UTF-8 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "name", "char", "count"),
    [("utf-16", "UTF-16", "\u8a9e", 45_000), ("latin-1", "ISO-8859-1", "\xe9", 60_000)],
)
def test_a_document_over_the_limit_only_in_utf8_is_told_so(
    codec: str, name: str, char: str, count: int
) -> None:
    # Within the limit as given, over it in UTF-8 (a CJK character is 2 bytes in UTF-16,
    # 3 in UTF-8; 'é' 1 in Latin-1, 2): the message says so rather than blame escaping.
    body = f"<Response><Speak>{char * count}</Speak></Response>"
    text = f'<?xml version="1.0" encoding="{name}"?>{body}'
    data = text.encode(codec)
    assert len(data) <= MAX_BYTES < len(text.encode())
    err = error(data)
    assert "once encoded as UTF-8, over Vobiz's 100,000" in str(err)
    assert "escapes" not in str(err)
    assert err.value == len(text.encode())  # the text as given, its declaration and all


# --- the rendered size: counted first, rendered only when it may be over ---------------------


def test_a_large_document_that_cannot_render_over_the_limit_is_not_rendered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Rendering a 90 KB document costs several percent of parsing it: it is rendered only
    # when counting what escaping could add says it may be over.
    def rendered(doc: Response) -> None:
        raise AssertionError("rendered")

    module = importlib.import_module("answerkit._parse_lxml")
    monkeypatch.setattr(module, "_check_rendered_size", rendered)
    body = "".join(f'<Speak voice="MAN">Hello {i} there</Speak>\n' for i in range(2000))
    text = f"{DECL}\n<Response>\n{body}</Response>"
    assert 80_000 < len(text) <= MAX_BYTES
    assert len(parse(text).children) == 2000
    assert len(parse(text.encode()).children) == 2000
    # One that may render over it still is: here every '>' of the text becomes '&gt;'.
    with pytest.raises(AssertionError, match="rendered"):
        parse("<Response><Speak>" + ">" * 30_000 + "</Speak></Response>")


#: Pieces of a document, chosen for how rendering changes their size: these grow where
#: to_xml escapes more than the source did...
_GROWING = [
    lambda r: "<Speak>" + ">" * r.randrange(1, 600) + "</Speak>",
    lambda r: "<Speak><![CDATA[" + "<&>"[r.randrange(3) :] * r.randrange(1, 200) + "]]></Speak>",
    lambda r: (
        "<Gather action='https://a.b' inputType='speech' hints='"
        + ",".join(['"' * r.randrange(1, 20)] * r.randrange(1, 20))
        + "'/>"
    ),
    lambda r: (
        '<Gather action="https://a.b" inputType="speech" hints="'
        + ",".join(["&#34;" * r.randrange(1, 100)] * r.randrange(1, 5))
        + '"/>'
    ),
    lambda r: (
        '<Gather action="https://a.b" inputType="speech" hints="a&#34;b&#10;c&#9;d&#13;e&apos;f"/>'
    ),
    lambda r: "<Speak>a&#13;b&#62;c&lt;d&amp;e&#x22;f</Speak>",
]
#: ...these render as written or shorter.
_OTHERS = [
    lambda r: "<Speak>" + "plain words, 'quoted' " * r.randrange(1, 40) + "</Speak>",
    lambda r: '<Play loop="007">https://a.b/c.mp3?x=1&amp;y=2</Play>',
    lambda r: "<Speak>x<prosody rate='slow'/>y<break></break></Speak>",
    lambda r: "<Wait></Wait>",
    lambda r: "<Wait/>",
    lambda r: r.choice(["\n  ", "<!-- a > comment -->", "<?pi x?>"]),
]


def _rendered_size(piece: str) -> int:
    """What ``piece`` (Response's content) adds to a rendered document (next to a Wait: an
    empty Response renders as <Response/>)."""
    with_piece = parse(f"<Response><Wait/>{piece}</Response>").to_bytes()
    return len(with_piece) - len(Response(Wait()).to_bytes())


def _near_the_limit(r: random.Random) -> tuple[str, int]:
    """A document and the size it renders as: a few bytes either side of MAX_BYTES. Half
    are made of one growing piece only, where the count is closest to the truth."""
    target = MAX_BYTES + r.randrange(-8, 9)
    kinds = [r.choice(_GROWING)] if r.random() < 0.5 else _GROWING + _OTHERS
    frame = len(Response(Wait()).to_bytes()) - len("<Wait/>")
    pieces: list[str] = []
    size = frame
    while size < target - 3_000:  # a piece renders under 3,000 bytes
        piece = r.choice(kinds)(r)
        pieces.append(piece)
        size += _rendered_size(piece)
    pad = "<Speak>" + "a" * (target - size - len("<Speak></Speak>")) + "</Speak>"
    pieces.insert(r.randrange(len(pieces) + 1), pad)
    head = r.choice(["", DECL, DECL + "\n"])
    return f"{head}<Response>{''.join(pieces)}</Response>", target


def test_parse_accepts_exactly_the_documents_that_render_within_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The count that decides whether to render is an upper bound: a document it lets
    # through unrendered must not render over the limit (to_xml would refuse to write what
    # parse accepted). Against the truth: to_bytes of the document read without the check.
    module = importlib.import_module("answerkit._parse_lxml")
    r = random.Random(20240611)
    documents = [_near_the_limit(r) for _ in range(40)]
    # Grown only by the XML declaration rendering adds.
    plain = "<Response><Speak></Speak></Response>"
    for target in (MAX_BYTES - 1, MAX_BYTES, MAX_BYTES + 1):
        size = target - len(DECL) - len(plain)
        documents.append((plain.replace("<Speak>", "<Speak>" + "a" * size), target))
    verdicts = set()
    for text, target in documents:
        if len(text.encode()) > MAX_BYTES:  # refused as too big as given: not the point
            continue
        for source in (text, text.encode()):
            try:
                parse(source)
                accepted = True
            except ParseError as e:
                assert "renders as" in str(e)
                accepted = False
            with monkeypatch.context() as m:
                m.setattr(module, "_check_rendered_size", lambda doc: None)
                doc = parse(source)
            try:
                fits = len(doc.to_bytes()) <= MAX_BYTES
            except ElementError:
                fits = False
            assert accepted == fits == (target <= MAX_BYTES), (target, text[:200])
            verdicts.add(accepted)
    assert verdicts == {True, False}


def test_a_document_within_the_limit_in_utf8_is_read_whatever_its_encoding_is_named() -> None:
    # Measured after the declaration was rewritten as UTF-8: "L1" is 3 bytes shorter, and
    # an ASCII document of exactly 100,000 bytes was refused as bytes, read as a str.
    head = '<?xml version="1.0" encoding="L1"?>'
    doc = head + " " * (100_000 - len(head) - len("<Response/>")) + "<Response/>"
    assert len(doc) == 100_000
    assert parse(doc.encode("latin-1")) == parse(doc) == Response()


def test_stray_text_that_python_strips_is_shown() -> None:
    # str.strip() took NBSP away, and the message showed ''.
    assert "text '\\xa0' outside any element" in str(
        error("<Response><Speak>a</Speak>\u00a0</Response>")
    )
