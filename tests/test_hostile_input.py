"""Hostile input: fuzzed webhooks, forged and replayed signatures, XML bombs, transfer allow-list.

Every webhook goes through the Flask test client of a real :class:`CallFlow`. The
invariants checked on every answer (see :func:`check_answer`):

* never a 500 (nor any status outside 200/400/403: the 503 that asks Vobiz to send a
  status callback again needs a handler or store failure, which these requests never cause);
* a 200 body is empty or valid VobizXML (``answerkit.parse``);
* no handler runs unless the request carried a valid, fresh signature (handler
  invocations are counted).

Each defect these tests found was fixed with its test; a test here that fails is a
regression.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import itertools
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch
from urllib.parse import quote, quote_from_bytes, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from answerkit import (
    CallFlow,
    CallRequest,
    ConfigurationError,
    Event,
    Gather,
    ParseError,
    Redirect,
    Response,
    Speak,
    TransferArgumentError,
    parse,
    sign,
)
from answerkit._wsgi import wsgi_text
from answerkit.state import MemoryStore, SQLiteStore
from answerkit.testing.local_vobiz import LocalVobiz

PUBLIC = "https://voice.example.com"
TOKEN = "hostile-token-5f2a9c0d"
OTHER_TOKEN = "someone-elses-token-77"
SIG_HEADERS = (
    "X-Vobiz-Signature-V2",
    "X-Vobiz-Signature-V2-Nonce",
    "X-Vobiz-Signature-V3",
    "X-Vobiz-Signature-V3-Nonce",
    "X-Vobiz-Signature-MA-V2",
    "X-Vobiz-Signature-MA-V3",
)
CALL = {
    "CallUUID": "3f6a1e2c-0000-4000-8000-000000000001",
    "From": "14155550100",
    "To": "14155550199",
    "Direction": "inbound",
    "CallStatus": "in-progress",
    "Event": "StartApp",
}
KNOWN_FIELDS = (
    "CallUUID", "From", "To", "Event", "Direction", "CallStatus", "Digits", "Speech",
    "SpeechConfidenceScore", "InputType", "CallerName", "DialStatus", "DialBLegUUID",
    "RecordingID", "RecordUrl", "Duration", "BillDuration", "HangupCause", "HangupCauseCode",
    "ConferenceName", "X-PH-Ticket", "X-VH-Agent", "ParentAuthID", "SessionStart",
)  # fmt: skip

#: Examples tried per fuzz test, summed at the end of the module (reported in LOAD.md).
EXAMPLES: Counter[str] = Counter()

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# --------------------------------------------------------------------------- the flow


class Runs:
    """Handler invocations, by route: the proof that no unsigned request ran one."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def total(self) -> int:
        return sum(self.count.values())


def make_flow(runs: Runs, **kwargs: Any) -> CallFlow:
    """An IVR-ish flow that echoes hostile input back into its documents."""
    kwargs.setdefault("public_url", PUBLIC)
    kwargs.setdefault("auth_token", TOKEN)
    kwargs.setdefault("state", MemoryStore())
    flow = CallFlow("hostile", **kwargs)

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        runs.count["answer"] += 1
        visits = call.state.incr("visits")
        # Echo everything an attacker controls into text and URL attributes: the
        # renderer must escape it or refuse it (fallback), never emit broken XML.
        heard = " ".join(v for v in (call.digits, call.speech, call.caller_name) if v)
        return Response(
            Gather(
                Speak(f"Visit {visits}. You said {heard or 'nothing'}. Press 1."),
                action=flow.url_for("menu", echo=call.params.get("Echo"), uuid=call.call_uuid),
                num_digits=1,
            ),
            Redirect(flow.url_for("answer", q=call.query.get("q"))),
        )

    @flow.route("/answer", event=Event.Hangup)
    def hung_up(call: CallRequest) -> None:
        runs.count["hangup"] += 1

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        runs.count["menu"] += 1
        return Response(Speak(f"Menu option {call.digits or 'none'} for {call.from_}"))

    @flow.route("/menu2")  # a path that extends another route's: V2 nonce shifts
    def menu2(call: CallRequest) -> Response:
        runs.count["menu2"] += 1
        return Response(Speak("Second menu."))

    @flow.route("/events", status_callback=True)
    def events(call: CallRequest) -> None:
        runs.count["events"] += 1

    return flow


@pytest.fixture(scope="module")
def runs() -> Runs:
    return Runs()


@pytest.fixture(scope="module")
def hostile_flow(runs: Runs) -> CallFlow:
    return make_flow(runs)


@pytest.fixture(scope="module")
def client(hostile_flow: CallFlow) -> Any:
    return hostile_flow.create_app().test_client()


@pytest.fixture(scope="module", autouse=True)
def _report_examples() -> Iterator[None]:
    yield
    if EXAMPLES:
        line = ", ".join(f"{k}={v}" for k, v in sorted(EXAMPLES.items()))
        print(f"\nhostile-input examples: {line}; total={sum(EXAMPLES.values())}")


def signed(path: str, token: str = TOKEN, root: str = PUBLIC) -> dict[str, str]:
    return sign(root + path, token)


def check_answer(response: Any, *, runs: Runs, before: int, genuine: bool) -> None:
    """The invariants every webhook answer must keep."""
    status = response.status_code
    assert status != 500
    if status == 413:
        # Werkzeug refuses a multipart body over MAX_FORM_MEMORY_SIZE (500 kB) or with more
        # than MAX_FORM_PARTS (1,000) parts while the view reads the form, before the
        # signature check; Vobiz never sends multipart, and no handler runs.
        assert runs.total() == before
        return
    assert status in (200, 400, 403), (status, response.data[:200])
    if status == 200:
        body = response.data
        if body:
            assert response.content_type.startswith("application/xml"), response.content_type
            parse(body)  # raises on anything that is not valid VobizXML
    if not genuine:
        assert status == 403, (status, response.data[:200])
        assert runs.total() == before, "a handler ran without a valid signature"
    else:
        assert runs.total() - before <= 1


# --------------------------------------------------------------------------- strategies

_any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
_oversized = st.builds(
    lambda ch, n: ch * n,
    st.sampled_from(["A", "\u00e9", "\u20ac", "&", "<", "%", "\U0001f4de"]),
    st.integers(1_000, 40_000),
)
_field_name = st.one_of(st.sampled_from(KNOWN_FIELDS), _any_text)
_long_query_value = st.builds(
    lambda ch, n: ch * n, st.sampled_from(["A", "\u00e9", "&", "%"]), st.integers(500, 8_000)
)
_field_value = st.one_of(
    _any_text,
    st.sampled_from(["", " ", "0", "-1", "1e309", "NaN", "inf", "+", "sip:", "\x00", "\ufeff"]),
    _oversized,
)
_call_uuid = st.one_of(
    st.just(CALL["CallUUID"]),
    _any_text,
    st.sampled_from(["", " ", "\x00", "../../etc/passwd", "a" * 5000, "%00", "null"]),
)
_encoding = st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252", "utf-7"])
_content_type = st.one_of(
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "application/x-www-form-urlencoded; charset=utf-16",
            "application/x-www-form-urlencoded; charset=no-such-codec",
            "application/x-www-form-urlencoded; charset=\x7f",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=zzz",
            "application/json",
            "text/xml",
            "text/plain",
            "application/octet-stream",
            "",
            ";;;",
            "application/x-www-form-urlencoded; charset=utf-8; charset=latin-1",
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)


def _encode_pairs(pairs: list[tuple[str, str]], encoding: str) -> bytes:
    parts = []
    for key, value in pairs:
        k = key.encode(encoding, "replace")
        v = value.encode(encoding, "replace")
        parts.append(f"{quote_from_bytes(k)}={quote_from_bytes(v)}")
    return "&".join(parts).encode("ascii")


@st.composite
def form_bodies(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]]]:
    """A form body: the CallUUID (maybe odd, missing or duplicated) plus arbitrary fields."""
    pairs: list[tuple[str, str]] = []
    if draw(st.booleans()):
        pairs.append(("CallUUID", draw(_call_uuid)))
    pairs += draw(st.lists(st.tuples(_field_name, _field_value), max_size=8))
    if draw(st.booleans()):  # duplicated fields, the second differing from the first
        pairs += [(k, draw(_field_value)) for k, _v in pairs[: draw(st.integers(0, 3))]]
    pairs = draw(st.permutations(pairs))
    style = draw(st.sampled_from(["encoded", "raw-bytes", "junk"]))
    if style == "encoded":
        body = _encode_pairs(pairs, draw(_encoding))
    elif style == "raw-bytes":  # not percent-encoded at all, any bytes (non-UTF-8 included)
        body = b"&".join(
            k.encode("utf-8", "replace") + b"=" + v.encode(draw(_encoding), "replace")
            for k, v in pairs
        )
    else:
        body = draw(st.binary(max_size=2_000))
    return body, pairs


# --------------------------------------------------------------------------- fuzzing


@FUZZ
@given(body=form_bodies(), content_type=_content_type,
       path=st.sampled_from(["/answer", "/menu", "/events"]), query=st.dictionaries(
           _any_text, _any_text, max_size=3))  # fmt: skip
def test_fuzzed_signed_form_bodies_never_break_the_webhook(
    client: Any, runs: Runs, body: tuple[bytes, list[tuple[str, str]]], content_type: str,
    path: str, query: dict[str, str],
) -> None:  # fmt: skip
    EXAMPLES["signed form bodies"] += 1
    before = runs.total()
    target = path + ("?" + urlencode(query) if query else "")
    response = client.post(
        target,
        data=body[0],
        headers={**signed(path), "Content-Type": content_type},
    )
    check_answer(response, runs=runs, before=before, genuine=True)


@FUZZ
@given(params=st.lists(st.tuples(_field_name, st.one_of(_any_text, _long_query_value)),
                       max_size=8),
       uuid=_call_uuid, duplicate=st.booleans())  # fmt: skip
def test_fuzzed_get_callbacks_never_break_the_webhook(
    client: Any, runs: Runs, params: list[tuple[str, str]], uuid: str, duplicate: bool
) -> None:
    EXAMPLES["signed GET query strings"] += 1
    pairs = [("CallUUID", uuid), *params]
    if duplicate:
        pairs.append(("CallUUID", "second-" + uuid))
    before = runs.total()
    query = urlencode([(k, v.encode("utf-8", "replace")) for k, v in pairs])
    response = client.get("/answer?" + query, headers=signed("/answer"))
    check_answer(response, runs=runs, before=before, genuine=True)
    if response.status_code == 400:
        assert not uuid.strip(), "400 is only for a missing CallUUID"


def _many_fields(n: int) -> bytes:
    return ("&".join(f"F{i}={i}" for i in range(n)) + "&" + urlencode(CALL)).encode()


OVERSIZED = {
    "2 MB value": (urlencode({**CALL, "Speech": "s" * 2_000_000}).encode(), None),
    "1 MB CallUUID": (urlencode({**CALL, "CallUUID": "u" * 1_000_000}).encode(), None),
    "1 MB Digits echoed": (urlencode({**CALL, "Digits": "1" * 1_000_000}).encode(), None),
    "50,000 fields": (_many_fields(50_000), None),
    "5,000 copies of CallUUID": (b"&".join([b"CallUUID=x"] * 5_000), None),
    "1 MB multipart": (
        b"--zzz\r\nContent-Disposition: form-data; name=\"CallUUID\"\r\n\r\n"
        + b"x" * 1_000_000 + b"\r\n--zzz--\r\n",
        "multipart/form-data; boundary=zzz",
    ),
    "2,000 multipart parts": (
        b"".join(b"--zzz\r\nContent-Disposition: form-data; name=\"F%d\"\r\n\r\nv\r\n" % i
                 for i in range(2_000)) + b"--zzz--\r\n",
        "multipart/form-data; boundary=zzz",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(OVERSIZED))
@pytest.mark.parametrize("genuine", [True, False])
def test_oversized_bodies(client: Any, runs: Runs, name: str, genuine: bool) -> None:
    body, content_type = OVERSIZED[name]
    headers = signed("/answer") if genuine else {}
    headers["Content-Type"] = content_type or "application/x-www-form-urlencoded"
    before = runs.total()
    response = client.post("/answer", data=body, headers=headers)
    check_answer(response, runs=runs, before=before, genuine=genuine)


_header_name = st.one_of(
    st.sampled_from([
        *SIG_HEADERS, "x-vobiz-signature-v3", "X-VOBIZ-SIGNATURE-V2-NONCE", "X-Vobiz-Signature",
        "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-For", "Host",
        "auth-token", "parent-auth-token", "Content-Length", "Transfer-Encoding", "Cookie",
    ]),
    st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"),
            min_size=1, max_size=40),
)  # fmt: skip
_header_value = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
    st.text(st.characters(min_codepoint=0x80, max_codepoint=0xFF), max_size=40),
    st.builds(lambda n: "A" * n, st.integers(1_000, 20_000)),
    st.builds(lambda b: base64.b64encode(b).decode(), st.binary(min_size=30, max_size=34)),
)
# Named "safe to add" for history: these are the headers the fuzzer leaves alone.
_SAFE_TO_ADD = {"Host", "Content-Length", "Transfer-Encoding", "Content-Type"}


@FUZZ
@given(extra=st.lists(st.tuples(_header_name, _header_value), max_size=6),
       keep_signature=st.booleans())  # fmt: skip
def test_fuzzed_headers_never_let_a_forgery_in(
    extra: list[tuple[str, str]], keep_signature: bool
) -> None:
    """Arbitrary headers, with or without a genuine signature underneath.

    Junk may replace any signature header. Each example gets a fresh flow: every
    (nonce, signature) pair of an accepted request is remembered, junk ones included,
    so junk repeated by Hypothesis would otherwise read as a replay. Headers that break
    HTTP framing (Host, Content-Length, Transfer-Encoding, Content-Type) are left out:
    they test the server and the body's decoding, not the signature check.
    """
    EXAMPLES["fuzzed headers"] += 1
    genuine = signed("/answer")
    headers: list[tuple[str, str]] = list(genuine.items()) if keep_signature else []
    for name, value in extra:
        if name.title() in _SAFE_TO_ADD or name in _SAFE_TO_ADD:
            continue
        if name.lower().startswith("x-vobiz-signature"):
            headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
        headers.append((name, value))
    runs = Runs()
    client = make_flow(runs).create_app().test_client()
    final = {k.lower(): v for k, v in headers}
    intact = keep_signature and any(
        final.get(sig.lower()) == genuine[sig] and final.get(nonce.lower()) == genuine[nonce]
        for sig, nonce in _PAIRS
    )
    before = runs.total()
    response = client.post("/answer", data=CALL, headers=headers)
    # Accepted if and only if one genuine (signature, nonce) pair arrived untouched.
    assert (response.status_code == 200) == intact, (response.status_code, intact)
    check_answer(response, runs=runs, before=before, genuine=intact)
    assert runs.total() == before + int(intact)


_PAIRS = (
    ("X-Vobiz-Signature-V3", "X-Vobiz-Signature-V3-Nonce"),
    ("X-Vobiz-Signature-MA-V3", "X-Vobiz-Signature-V3-Nonce"),
    ("X-Vobiz-Signature-V2", "X-Vobiz-Signature-V2-Nonce"),
    ("X-Vobiz-Signature-MA-V2", "X-Vobiz-Signature-V2-Nonce"),
)


@FUZZ
@given(
    token=st.one_of(st.just(OTHER_TOKEN), _any_text.filter(lambda t: t != TOKEN)),
    url=st.one_of(
        st.sampled_from([
            "https://voice.example.com/menu", "https://evil.example.com/answer",
            "http://voice.example.com/answer", "https://voice.example.com:8443/answer",
            "https://voice.example.com/answer/", "https://voice.example.com/Answer",
            "https://voice.example.com/answer%2F", "https://voice.example.com.evil.com/answer",
            "https://voice.example.com/prefix/answer", "https://voice.example.com",
        ]),
        _any_text.map(lambda t: "https://" + t),
    ),
    use_own_token=st.booleans(),
    raw_sig=st.one_of(st.none(), _header_value),
    nonce=st.one_of(st.none(), _header_value),
)  # fmt: skip
def test_forged_and_retargeted_signatures_are_refused(
    client: Any, runs: Runs, token: str, url: str, use_own_token: bool,
    raw_sig: str | None, nonce: str | None,
) -> None:  # fmt: skip
    """Signatures made with another token, for another URL, or made up: always 403."""
    EXAMPLES["forged signatures"] += 1
    try:
        headers = sign(url, TOKEN if use_own_token else token) if token else {}
    except ValueError:  # urllib cannot split this URL (e.g. "https://["): nothing to sign
        assume(False)
    except ConfigurationError:  # sign() refuses it (no host, as "https://"): nothing to sign
        assume(False)
    if not use_own_token or raw_sig is None:
        pass
    else:  # a made-up signature value under the genuine-looking nonce
        headers = {k: (raw_sig if "Nonce" not in k else v) for k, v in headers.items()}
    if nonce is not None and headers:
        headers["X-Vobiz-Signature-V3-Nonce"] = nonce
        headers["X-Vobiz-Signature-V2-Nonce"] = nonce
    if use_own_token and raw_sig is None and nonce is None:
        # Own token, so only the URL differs: the URL must really differ from ours.
        from answerkit.signature import base_url

        try:
            ours = base_url(url) == base_url(PUBLIC + "/answer")
        except ValueError:  # urllib cannot split it ("https://["): not our URL
            ours = False
        if ours:
            return
    before = runs.total()
    response = client.post("/answer", data=CALL, headers=headers)
    check_answer(response, runs=runs, before=before, genuine=False)


# --------------------------------------------------------------------------- signatures


def test_signature_for_the_same_url_in_another_spelling_is_accepted(client: Any) -> None:
    # Normalisation must not make the check stricter than the spec: default port, case.
    for url in ("https://VOICE.example.com/answer", "https://voice.example.com:443/answer",
                "HTTPS://voice.example.com/answer?ignored=1#frag"):  # fmt: skip
        assert client.post("/answer", data=CALL, headers=sign(url, TOKEN)).status_code == 200


@pytest.mark.parametrize(
    ("signed_url", "path"),
    [
        (PUBLIC + "/answer", "/menu"),  # another path of the same app
        (PUBLIC + "/menu", "/answer"),
        ("https://other.example.com/answer", "/answer"),  # another host
        ("http://voice.example.com/answer", "/answer"),  # another scheme
        ("https://voice.example.com:8443/answer", "/answer"),  # another port
        ("https://voice.example.com/answer/", "/answer"),  # another path spelling
        ("https://voice.example.com/%61nswer", "/answer"),
        ("https://voice.example.com/v2/answer", "/answer"),  # another mount prefix
    ],
)
def test_retargeted_signatures_are_refused(
    client: Any, runs: Runs, signed_url: str, path: str
) -> None:
    before = runs.total()
    response = client.post(path, data=CALL, headers=sign(signed_url, TOKEN))
    check_answer(response, runs=runs, before=before, genuine=False)


def test_percent_encoded_path_needs_its_own_signature(client: Any, runs: Runs) -> None:
    """``/%61nswer`` reaches the /answer view, but Vobiz would have signed it as sent."""
    before = runs.total()
    response = client.post("/%61nswer", data=CALL, headers=signed("/answer"))
    check_answer(response, runs=runs, before=before, genuine=False)
    response = client.post("/%61nswer", data=CALL, headers=signed("/%61nswer"))
    assert response.status_code == 200


def test_forwarded_headers_cannot_retarget_without_trusted_proxies() -> None:
    """No public_url and no trusted proxy: X-Forwarded-* must not pick the signed URL."""
    runs = Runs()
    flow = make_flow(runs, public_url=None)
    client = flow.create_app().test_client()
    spoof = {"X-Forwarded-Host": "attacker.example", "X-Forwarded-Proto": "https"}
    headers = {**sign("https://attacker.example/answer", TOKEN), **spoof}
    response = client.post("/answer", data=CALL, headers=headers)
    check_answer(response, runs=runs, before=0, genuine=False)
    # The request's own URL (what the test client sends) is what is checked.
    response = client.post("/answer", data=CALL, headers=sign("http://localhost/answer", TOKEN))
    assert response.status_code == 200 and runs.total() == 1


@pytest.fixture(scope="module")
def proxied() -> tuple[Any, Runs]:
    """A flow with no public URL behind one trusted proxy hop: X-Forwarded-* pick the URL."""
    runs = Runs()
    flow = make_flow(runs, public_url=None, trusted_proxies=1)
    return flow.create_app().test_client(), runs


_FORWARDED = ("X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix")


@FUZZ
@given(forwarded=st.dictionaries(st.sampled_from(_FORWARDED), _header_value, min_size=1),
       signed_for=st.sampled_from(["nothing", "localhost", "public"]))  # fmt: skip
def test_fuzzed_forwarded_headers_behind_a_trusted_proxy_never_let_a_forgery_in(
    proxied: tuple[Any, Runs], forwarded: dict[str, str], signed_for: str
) -> None:
    EXAMPLES["forwarded headers"] += 1
    client, runs = proxied
    headers = dict(forwarded)
    if signed_for == "localhost":  # the URL the request reached, not the forwarded one
        headers.update(sign("http://localhost/answer", TOKEN))
    elif signed_for == "public":
        headers.update(sign(PUBLIC + "/answer", TOKEN))
    before = runs.total()
    response = client.post("/answer", data=CALL, headers=headers)
    host = forwarded.get("X-Forwarded-Host", "").split(",")[-1]
    if "[" in host or "]" in host:
        assert response.status_code == 403 and runs.total() == before
        return
    if response.status_code == 200:
        # Accepted only when a signature was sent and the forwarded headers name the
        # signed URL's scheme and host (an empty forwarded value leaves the request's own).
        proto = forwarded.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower() or "http"
        fwd = forwarded.get("X-Forwarded-Host", "").split(",")[-1].strip() or "localhost"
        assert signed_for != "nothing"
        assert proto in ("http", "https")
        assert fwd.lower().rpartition(":")[0 if ":" in fwd else 2] in (
            "localhost",
            "voice.example.com",
        )
        check_answer(response, runs=runs, before=before, genuine=True)
    else:
        check_answer(response, runs=runs, before=before, genuine=False)


@pytest.mark.parametrize("signed_for", ["nothing", "https://example.com/answer"])
def test_signed_for_the_forwarded_url_behind_a_trusted_proxy(
    proxied: tuple[Any, Runs], signed_for: str
) -> None:
    client, runs = proxied
    forwarded = {"X-Forwarded-Host": "spoofed.example, example.com", "X-Forwarded-Proto": "https"}
    headers = {**forwarded, **sign("https://example.com/answer", TOKEN)}
    assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    unsigned = client.post("/answer", data=CALL, headers=forwarded)
    check_answer(unsigned, runs=runs, before=runs.total(), genuine=False)


@pytest.mark.parametrize("host", ["[", "a]b", "[::1"])
def test_malformed_forwarded_host_is_refused_with_403(proxied: tuple[Any, Runs], host: str) -> None:
    client, runs = proxied
    before = runs.total()
    response = client.post("/answer", data=CALL, headers={"X-Forwarded-Host": host})
    check_answer(response, runs=runs, before=before, genuine=False)


def test_exact_replay_is_refused(client: Any, runs: Runs) -> None:
    headers = signed("/answer")
    assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    before = runs.total()
    for variant in (
        headers,
        {k.lower(): v for k, v in headers.items()},  # header names re-cased
        {k: f"  {v} " for k, v in headers.items()},  # padded with spaces
        {k: v for k, v in headers.items() if "V3" not in k},  # V3 dropped, V2 kept
        {k: v for k, v in headers.items() if "MA" in k or "Nonce" in k},  # MA pair only
    ):
        response = client.post("/answer", data={**CALL, "Digits": "9"}, headers=variant)
        check_answer(response, runs=runs, before=before, genuine=False)


def test_replay_to_another_route_is_refused(client: Any, runs: Runs) -> None:
    headers = signed("/answer")
    assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    before = runs.total()
    response = client.post("/menu", data=CALL, headers=headers)
    check_answer(response, runs=runs, before=before, genuine=False)


def _replay_only_v3(headers: dict[str, str], signature: str) -> dict[str, str]:
    return {
        "X-Vobiz-Signature-V3": signature,
        "X-Vobiz-Signature-V3-Nonce": headers["X-Vobiz-Signature-V3-Nonce"],
    }


def _non_canonical(b64: str) -> str:
    """The same 32 bytes in another base64 spelling (unused low bits of the last digit set)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert b64.endswith("=") and not b64.endswith("==")
    last = alphabet.index(b64[-2])
    other = b64[:-2] + alphabet[last ^ 0b01] + "="
    assert base64.b64decode(other, validate=True) == base64.b64decode(b64)
    return other


def test_replay_with_signature_in_a_comma_list_is_refused(client: Any, runs: Runs) -> None:
    headers = signed("/answer")
    assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    before = runs.total()
    forged = _replay_only_v3(headers, "x," + headers["X-Vobiz-Signature-V3"])
    response = client.post("/answer", data=CALL, headers=forged)
    check_answer(response, runs=runs, before=before, genuine=False)


def test_replay_with_non_canonical_base64_is_refused(client: Any, runs: Runs) -> None:
    headers = signed("/answer")
    assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    before = runs.total()
    forged = _replay_only_v3(headers, _non_canonical(headers["X-Vobiz-Signature-V3"]))
    response = client.post("/answer", data=CALL, headers=forged)
    check_answer(response, runs=runs, before=before, genuine=False)


def test_replay_is_refused_across_workers_sharing_the_store(tmp_path: Any) -> None:
    """Two flows on one SQLite file play two gunicorn workers: a replay to the other fails."""
    path = tmp_path / "state.sqlite3"
    runs = Runs()
    worker_a = make_flow(runs, state=SQLiteStore(path)).create_app().test_client()
    worker_b = make_flow(runs, state=SQLiteStore(path)).create_app().test_client()
    headers = signed("/answer")
    assert worker_a.post("/answer", data=CALL, headers=headers).status_code == 200
    response = worker_b.post("/answer", data=CALL, headers=headers)
    check_answer(response, runs=runs, before=1, genuine=False)


def test_replay_window_is_the_only_bound_on_a_replay() -> None:
    """Vobiz signs no timestamp (spec §3.3): a nonce is remembered for ``replay_window``.

    Within the window a replay is refused; once it has passed, the same headers are a new
    request as far as anyone can tell. This pins that the window is honoured as configured
    (the default is 300 s; 120 s here): the store's clock (time.time) is moved on instead
    of waiting.
    """
    window = 120.0
    runs = Runs()
    client = make_flow(runs, replay_window=window).create_app().test_client()
    headers = signed("/answer")
    sent = time.time()  # the nonce is recorded at or after this
    assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    recorded = time.time()  # and at or before this
    response = client.post("/answer", data=CALL, headers=headers)
    check_answer(response, runs=runs, before=1, genuine=False)
    with patch("time.time", return_value=sent + window - 1):  # still inside the window
        response = client.post("/answer", data=CALL, headers=headers)
    check_answer(response, runs=runs, before=1, genuine=False)
    with patch("time.time", return_value=recorded + window + 1):  # past it
        assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    assert runs.total() == 2
    # A signature for another URL stays invalid however long one waits.
    retargeted = sign("https://voice.example.com:8443/answer", TOKEN)
    with patch("time.time", return_value=recorded + 10 * window):
        response = client.post("/answer", data=CALL, headers=retargeted)
    check_answer(response, runs=runs, before=2, genuine=False)


def test_unsigned_request_without_call_uuid_is_403_not_400(client: Any, runs: Runs) -> None:
    """The signature is checked before anything else, so probing learns nothing."""
    before = runs.total()
    response = client.post("/answer", data={"Event": "StartApp"})
    check_answer(response, runs=runs, before=before, genuine=False)


# --------------------------------------------------------------------------- parse


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Response><Speak>&lol9;</Speak></Response>"""

XXE_FILE = """<?xml version="1.0"?>
<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Response><Speak>&xxe;</Speak></Response>"""

HOSTILE_DOCUMENTS = {
    "billion laughs": BILLION_LAUGHS,
    "external entity file:///etc/passwd": XXE_FILE,
    "external entity over http": XXE_FILE.replace("file:///etc/passwd", "http://127.0.0.1:9/x"),
    "parameter entity": '<!DOCTYPE Response [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
    "<Response/>",
    "external DTD": '<!DOCTYPE Response SYSTEM "file:///etc/passwd"><Response/>',
    "public DTD": '<!DOCTYPE Response PUBLIC "-//X//Y" "http://127.0.0.1:9/d.dtd"><Response/>',
    "internal DTD only": "<!DOCTYPE Response []><Response/>",
    "lowercase doctype": '<!doctype Response [<!ENTITY x "y">]><Response/>',
    "doctype after comment": '<!-- hi --><!DOCTYPE Response [<!ENTITY x "y">]><Response/>',
    "undeclared entity": "<Response><Speak>&xxe;</Speak></Response>",
    "xinclude": '<Response><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
    'href="file:///etc/passwd" parse="text"/></Response>',
    "namespaced Speak": '<Response xmlns="http://evil"><Speak>x</Speak></Response>',
    "deep SSML nesting": "<Response><Speak>" + "<s>" * 5000 + "x" + "</s>" * 5000
    + "</Speak></Response>",
    "deep element nesting": "<Response>" + "<Gather>" * 5000 + "</Gather>" * 5000 + "</Response>",
    # 30,000 distinct characters: the each-key-once check took 4 s on them (quadratic)
    # before the length check ran first.
    "long finishOnKey": '<Response><Record finishOnKey="'
    + "".join(chr(0x4E00 + i) for i in range(30_000)) + '"/></Response>',
}  # fmt: skip


@pytest.mark.parametrize("name", list(HOSTILE_DOCUMENTS))
def test_hostile_documents_are_refused_by_parse(name: str) -> None:
    text = HOSTILE_DOCUMENTS[name]
    for source in (text, text.encode("utf-8")):
        with pytest.raises(ParseError):
            parse(source)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_dtd_hidden_in_another_encoding_is_refused(encoding: str) -> None:
    text = XXE_FILE.replace('encoding="UTF-8"', "").replace(
        '<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
    )
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        data = ("\ufeff" + text).encode(encoding)
    with pytest.raises(ParseError):
        parse(data)


def test_parse_never_reads_the_file_system(tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    uri = "file://" + os.fspath(secret)
    for text in (
        f'<!DOCTYPE Response [<!ENTITY x SYSTEM "{uri}">]><Response><Speak>&x;</Speak></Response>',
        f'<!DOCTYPE Response SYSTEM "{uri}"><Response/>',
    ):
        with pytest.raises(ParseError) as caught:
            parse(text)
        assert "TOP-SECRET" not in str(caught.value)


_xmlish = st.one_of(
    st.binary(max_size=400),
    _any_text,
    st.lists(
        st.sampled_from([
            "<Response>", "</Response>", "<Speak>", "</Speak>", "<Gather action='https://a/b'>",
            "</Gather>", "<Hangup/>", "<!DOCTYPE Response>", "<!ENTITY x 'y'>", "&x;", "&amp;",
            "<![CDATA[x]]>", "<!-- c -->", "<?pi x?>", "<s>", "</s>", "<break time='1s'/>",
            "\x00", "\ufeff", "<Dial>", "</Dial>", "<Number>+14155550100</Number>", "text",
            "<?xml version='1.0' encoding='latin-1'?>", "<Speak voice='MAN'>", "\u20ac",
        ]),
        max_size=20,
    ).map("".join),
)  # fmt: skip


@FUZZ
@given(source=_xmlish)
def test_parse_raises_only_parse_error(source: str | bytes) -> None:
    """Whatever the input, parse returns a Response or raises ParseError: nothing else."""
    EXAMPLES["parse inputs"] += 1
    try:
        doc = parse(source)
    except ParseError:
        return
    assert isinstance(doc, Response)
    assert parse(doc.to_bytes()) == doc  # what parse accepts renders back to itself


def test_parse_of_text_with_a_lone_surrogate_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="U\\+DCFF at position 17") as info:
        parse("<Response><Speak>\udcff</Speak></Response>")
    assert info.value.line == 1


@FUZZ
@given(before=_xmlish, after=_xmlish,
       marker=st.sampled_from(["<!DOCTYPE", "<!ENTITY"]))  # fmt: skip
def test_any_document_with_a_dtd_is_refused(
    before: str | bytes, after: str | bytes, marker: str
) -> None:
    EXAMPLES["DTD inputs"] += 1
    as_bytes = [x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass") for x in
                (before, after)]  # fmt: skip
    with pytest.raises(ParseError):
        parse(as_bytes[0] + marker.encode() + b" Response>" + as_bytes[1])


# --------------------------------------------------------------------------- transfer allow-list


@pytest.fixture
def transfer_flow(local_vobiz: LocalVobiz) -> Iterator[CallFlow]:
    client = local_vobiz.client(max_retries=0)
    flow = CallFlow(
        "transfers",
        public_url=PUBLIC,
        auth_token=TOKEN,
        state=MemoryStore(),
        client=client,
        transfer_hosts=["partner.example.com"],
    )

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Speak("Please hold"))

    yield flow
    client.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/hold",
        "https://partner.example.com.evil.com/hold",  # suffix trick
        "https://evil.com/partner.example.com",  # allowed host in the path
        "https://evil.com/?partner.example.com",
        "https://evil.com#@partner.example.com",
        "https://partner.example.com@evil.com/hold",  # allowed host as userinfo
        "https://partner.example.com:443@evil.com/hold",
        "https://voice.example.com.evil.com/hold",  # the flow's own host as a prefix
        "https://127.0.0.1/hold",
        "https://[::1]/hold",
        "https://localhost/hold",
        "https://xn--prtner-bua.example.com/hold",
        "https://partner.example.com./hold",  # trailing dot: not the name on the list
    ],
)
def test_transfer_refuses_hosts_outside_the_allow_list(
    transfer_flow: CallFlow, local_vobiz: LocalVobiz, url: str
) -> None:
    call = local_vobiz.add_call()
    with pytest.raises(TransferArgumentError) as caught:
        transfer_flow.transfer(call.call_uuid, aleg=url)
    assert caught.value.field == "url"
    with pytest.raises(TransferArgumentError):
        transfer_flow.transfer(call.call_uuid, aleg="hold", bleg=url)
    assert local_vobiz.requests == [], "something was sent before the URL was refused"


@pytest.mark.parametrize(
    "url",
    ["https://evil.com\\@partner.example.com/hold", "https://evil.com\\\\@partner.example.com/"],
)
def test_transfer_refuses_urls_whose_host_parsers_disagree_on(
    transfer_flow: CallFlow, local_vobiz: LocalVobiz, url: str
) -> None:
    call = local_vobiz.add_call()
    with pytest.raises(TransferArgumentError):
        transfer_flow.transfer(call.call_uuid, aleg=url)
    assert local_vobiz.requests == []


def test_transfer_to_allowed_hosts_and_routes_is_sent(
    transfer_flow: CallFlow, local_vobiz: LocalVobiz
) -> None:
    """The allow-list is not a wall: listed hosts (any case) and the flow's routes go out."""
    call = local_vobiz.add_call()
    local_vobiz.on_transfer_request = lambda *args: True  # judged elsewhere: do not fetch
    try:
        transfer_flow.transfer(call.call_uuid, aleg="https://PARTNER.example.com/hold?x=1")
        transfer_flow.transfer(call.call_uuid, aleg="hold", params={"lang": "en"})
    finally:
        local_vobiz.on_transfer_request = None
    sent = [r for r in local_vobiz.requests if r.method == "POST"]
    assert len(sent) == 2


# --------------------------------------------------------------------------- raw WSGI, both paths
#
# The tests above go through Werkzeug's test client, which always sends a well-formed
# request. Here the WSGI environ itself is built, so the request can be anything a server
# might hand over (a negative or lying Content-Length, chunked bodies, several signature
# values, odd paths below a mount prefix), and each one is sent both to the direct path
# (answerkit._wsgi.DirectRoutes) and to Flask's (direct=False): the answers must agree.

RAW_TOKEN = "raw-wsgi-token-4be1d07c"
PLAIN_SECRET = "plain-auth-token-9c1e44"  # what some accounts get in an auth-token header
ODD_RESULTS: dict[str, Any] = {
    "none": None,
    "bare element": Speak("bare"),
    "text": "<Response/>",
    "bytes": b"<Response/>",
    "number": 42,
    "list": [Response()],
    "response class": Response,
}


class Captured(logging.Handler):
    """Every answerkit log line, formatted as a log file would hold it (tracebacks too)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.text: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.text.append(self.format(record))


class RawApps:
    """One flow per (path, mount prefix); each answered directly and through Flask."""

    def __init__(self) -> None:
        self.calls: list[CallRequest] = []
        self.apps: dict[tuple[bool, str], Any] = {}
        for prefix in ("", "/voice"):
            for direct in (True, False):
                self.apps[direct, prefix] = self._flow().create_app(prefix or None, direct=direct)

    def _flow(self) -> CallFlow:
        flow = CallFlow("raw", public_url=PUBLIC, auth_token=RAW_TOKEN, state=MemoryStore())
        calls = self.calls

        @flow.route("/answer")
        def answer(call: CallRequest) -> Response:
            calls.append(call)
            return Response(Speak(f"Heard {call.digits or call.speech or 'nothing'}"))

        @flow.route("/events", status_callback=True)
        def events(call: CallRequest) -> None:
            calls.append(call)

        @flow.route("/odd")
        def odd(call: CallRequest) -> Any:
            calls.append(call)
            kind = call.query.get("kind", "")
            if kind == "raise":
                raise RuntimeError("handler bug")
            return ODD_RESULTS.get(kind, Response(Speak("odd")))

        return flow


@pytest.fixture(scope="module")
def raw_apps() -> RawApps:
    return RawApps()


@pytest.fixture(scope="module")
def captured() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("answerkit")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


_NONCES = itertools.count(10**19)


def _raw_sign(url: str) -> dict[str, str]:
    """Genuine headers with fresh, repeatable nonces (no two examples share one)."""
    n = next(_NONCES)
    return sign(url, RAW_TOKEN, nonce_v2=f"{n:020d}", nonce_v3=f"{n + 1:020d}") | {
        "_n": str(next(_NONCES))
    }


def _raw_text(draw: st.DrawFn, max_size: int = 40) -> str:
    """Text as a WSGI environ holds it: bytes read as latin-1."""
    raw = draw(
        st.one_of(
            st.text(max_size=max_size).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.binary(max_size=max_size),
            st.lists(
                st.sampled_from(["%", "%zz", "%e9", "%C3%A9", "+", "%20", "&", "=", "%00", ";"]),
                max_size=8,
            ).map(lambda xs: "".join(xs).encode()),
        )
    )
    return raw.decode("latin-1")


_VALUES = st.one_of(
    _field_value.filter(lambda v: len(v) < 2_000),
    st.sampled_from(["13", "13.0", "-1", "1e3", "0x10", "true", "False", "yes", "0.87", "NaN"]),
)
FORM = "application/x-www-form-urlencoded"
_RAW_ROUTES = ("/answer", "/events", "/odd")
_RAW_PATHS = ("/answer/", "/Answer", "//answer", "/answer%2F", "/nope", "/answer;x", "/odd/\u00e9")


def _request_line(text: str) -> str:
    """``text`` as it can stand in an HTTP request line: no spaces or control characters
    (a server refuses those before any WSGI app sees the request)."""
    return "".join(c if 0x20 < ord(c) != 0x7F else f"%{ord(c):02X}" for c in text)


@st.composite
def raw_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Everything about one request that a client controls, plus how it is signed.

    ``vobiz_like`` marks a request as Vobiz sends them (GET or form POST of a route, its
    length given, a CallUUID first): signed, it must reach the handler.
    """
    method = draw(st.sampled_from(["POST"] * 4 + ["GET"] * 2 + ["HEAD", "PUT", "OPTIONS", "post"]))
    path = draw(st.sampled_from(_RAW_ROUTES * 4 + _RAW_PATHS))
    pairs: list[tuple[str, str]] = []
    if draw(st.integers(0, 9)) > 0:
        pairs.append(("CallUUID", draw(st.one_of(st.just(CALL["CallUUID"]), _call_uuid))))
    pairs += draw(st.lists(st.tuples(_field_name, _VALUES), max_size=6))
    if draw(st.booleans()):
        pairs += [(k, draw(_VALUES)) for k, _v in pairs[: draw(st.integers(0, 2))]]
    pairs = draw(st.permutations(pairs))
    encoding = draw(st.sampled_from(["plus"] * 3 + ["percent"] * 2 + ["raw", "junk", "huge"]))
    if encoding == "plus":
        text = urlencode(pairs)
    elif encoding == "percent":
        text = urlencode(pairs, quote_via=quote)
    elif encoding == "raw":
        text = "&".join(f"{k}={v}" for k, v in pairs)
    elif encoding == "junk":
        text = _raw_text(draw, 200)
    else:  # past the direct path's 64 kB: Werkzeug's parser, either way
        text = urlencode([*pairs, ("Speech", "s" * 70_000)])
    as_query = method != "POST" or draw(st.integers(0, 4)) == 0
    query = text if as_query else ""
    if draw(st.booleans()):
        query += ("&" if query else "") + draw(st.one_of(st.just("kind=raise"), st.builds(
            lambda k: "kind=" + quote(k), st.sampled_from(list(ODD_RESULTS)))))  # fmt: skip
    junk_query = draw(st.integers(0, 3)) == 0
    if junk_query:
        query += _raw_text(draw)
    body = b"" if as_query else text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 5)) == 0:
        body = text.encode("latin-1", "replace")
    content_type = draw(st.one_of(st.none(), st.just(FORM), _content_type))
    length = draw(
        st.sampled_from(
            ["exact"] * 12 + ["missing", "short", "long", "-1", "junk", " 1", "huge", "chunked"]
        )
    )
    uuids = [v for k, v in pairs if k == "CallUUID"]
    vobiz_like = (
        path in _RAW_ROUTES
        and encoding in ("plus", "percent")
        and bool(uuids) and bool(uuids[0].strip())
        and not junk_query
        and (method == "GET" or (
            method == "POST" and not as_query and content_type in (None, FORM)
            # Werkzeug reads a chunked body as a form only when it says it is one.
            and (length == "exact" or (length == "chunked" and content_type == FORM))))
    )  # fmt: skip
    return {
        "method": method,
        "path": path,
        "prefix": draw(st.sampled_from(["", "/voice"])),
        "script_name": draw(st.sampled_from(["", "", "/site"])),
        "query": _request_line(query.encode("utf-8", "surrogatepass").decode("latin-1")),
        "body": body,
        "content_type": content_type,
        "length": length,
        "signature": draw(st.sampled_from(
            ["valid"] * 6 + ["none", "other path", "garbage", "non-ascii", "listed", "v2 only",
                             "tampered nonce", "other token", "site"])),
        "headers": draw(st.lists(st.tuples(_header_name, _header_value), max_size=3)),
        "vobiz_like": vobiz_like,
        "call_uuid": uuids[0].strip() if vobiz_like else None,
    }  # fmt: skip


def _raw_environ(req: dict[str, Any], sig: dict[str, str]) -> dict[str, Any]:
    body: bytes = req["body"]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req["method"],
        "SCRIPT_NAME": req["script_name"],
        "PATH_INFO": wsgi_text(req["prefix"] + req["path"]),
        "QUERY_STRING": req["query"],
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "HTTP_USER_AGENT": "Vobiz",
        "HTTP_AUTH_TOKEN": PLAIN_SECRET,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in req["headers"]:
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in ("HTTP_HOST", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING", "HTTP_AUTH_TOKEN"):
            continue
        environ[key] = value
    if req["content_type"] is not None:
        environ["CONTENT_TYPE"] = req["content_type"]
    length = {
        "exact": str(len(body)), "short": str(max(len(body) - 3, 0)), "long": str(len(body) + 7),
        "-1": "-1", "junk": "12abc", " 1": f" {len(body)}", "huge": "9" * 25,
    }.get(req["length"])  # fmt: skip
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    if req["length"] == "chunked":  # the server has de-chunked it and says where it ends
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    for name, value in sig.items():
        if not name.startswith("_"):
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def _raw_signature(req: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """The signature headers for ``req``, and whether they are genuine for its URL."""
    url = PUBLIC + req["prefix"] + req["path"]
    mode = req["signature"]
    if mode == "none":
        return {}, False
    if mode == "site":  # the public URL may name the WSGI mount too
        return _raw_sign(PUBLIC + req["script_name"] + req["prefix"] + req["path"]), True
    if mode == "other path":
        return _raw_sign(url + "x"), False
    if mode == "other token":
        return sign(url, OTHER_TOKEN, nonce_v2=_raw_sign(url)["_n"]), False
    sig = _raw_sign(url)
    if mode == "garbage":
        return {k: "Zm9v" * 11 if "Nonce" not in k else v for k, v in sig.items()}, False
    if mode == "non-ascii":
        return {k: "\u00e9" * 44 if "Nonce" not in k else v for k, v in sig.items()}, False
    if mode == "tampered nonce":
        return {k: v + "1" if "Nonce" in k else v for k, v in sig.items()}, False
    if mode == "listed":  # several values of one header, as a server folds them
        return {k: "junk, " + v if "Nonce" not in k else v for k, v in sig.items()}, True
    if mode == "v2 only":
        return {k: v for k, v in sig.items() if "V3" not in k}, True
    return sig, True


def _raw_call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes, str]:
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        started.append((status, headers))

    body = b"".join(app(environ, start_response))
    status, headers = started[-1]
    return status, body, dict(headers).get("Content-Type", "")


def _check_call(call: CallRequest) -> None:
    """A request that reached a handler carries sane, typed fields."""
    assert call.call_uuid and call.call_uuid == call.call_uuid.strip()
    assert call.call_uuid == call.params["CallUUID"].strip()
    for name, value in call.params.items():
        assert isinstance(name, str) and isinstance(value, str)
        value.encode("utf-8")  # no lone surrogates: every value can be logged or stored
    for value in (call.duration, call.bill_duration, call.hangup_cause_code):
        assert value is None or type(value) is int
    for number in (call.speech_confidence, call.stability):
        assert number is None or (type(number) is float and math.isfinite(number))
    assert call.bill_rate is None or call.bill_rate.is_finite()
    assert call.dial_ring_status in (None, True, False)
    assert isinstance(call.from_, str) and isinstance(call.to, str)
    assert call.method in ("GET", "POST")


@settings(FUZZ, max_examples=150, derandomize=True, database=None)
@given(req=raw_requests())
def test_raw_wsgi_requests_get_the_same_safe_answer_both_ways(
    raw_apps: RawApps, captured: Captured, req: dict[str, Any]
) -> None:
    """Never an exception or a 500, the same answer from the direct path and from Flask,
    no handler without a genuine signature, sane typed fields, and no secret in the log."""
    EXAMPLES["raw WSGI requests"] += 1
    sig, genuine = _raw_signature(req)
    answers = []
    # Werkzeug routes "//answer" to /answer (it drops extra leading slashes).
    full = "/" + (req["prefix"] + req["path"]).lstrip("/")
    is_route = full in [req["prefix"] + route for route in _RAW_ROUTES]
    for direct in (True, False):
        app = raw_apps.apps[direct, req["prefix"]]
        before = len(raw_apps.calls)
        del captured.text[:]
        status, body, content_type = _raw_call(app, _raw_environ(req, sig))
        code = int(status.split()[0])
        ran = len(raw_apps.calls) - before
        assert code != 500 and code < 500, (status, body[:300])
        # 413: a stated length past 1 MiB, the limit of a webhook body with no
        # MAX_CONTENT_LENGTH set.
        assert code in (200, 400, 403, 404, 405, 308, 413), (status, body[:300])
        if ran:
            assert ran == 1 and genuine and is_route, (ran, req["signature"])
            _check_call(raw_apps.calls[-1])
        if genuine and req["vobiz_like"]:
            assert ran == 1 and code == 200, (status, body[:300])
            assert raw_apps.calls[-1].call_uuid == req["call_uuid"]
        if is_route and req["method"].upper() in ("GET", "POST") and not genuine:
            assert code == 403, (status, body[:200])
        if code == 200 and body and content_type.startswith("application/xml"):
            parse(body)
        log = "\n".join(captured.text)
        signatures = [v for k, v in sig.items() if "Nonce" not in k and not k.startswith("_")]
        for secret in (RAW_TOKEN, PLAIN_SECRET, *signatures):
            assert secret not in log
        answers.append((code, body, content_type))
    assert answers[0] == answers[1]


# --------------------------------------------------------------------------- found by fuzzing


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-Host": "example.com/events?"},
        {"X-Forwarded-Host": "example.com/events#"},
        {"X-Forwarded-Host": "example.com", "X-Forwarded-Port": "443/events?"},
        {"X-Forwarded-Host": "example.com/events\\"},
    ],
)
def test_forwarded_host_or_port_cannot_move_the_signed_path(
    proxied: tuple[Any, Runs], forwarded: dict[str, str]
) -> None:
    """A proxy may pass a client's X-Forwarded-Host through unchanged. A "host" holding a
    path once made /answer be checked as https://example.com/events, so a signature Vobiz
    made for one route opened another."""
    client, runs = proxied
    before = runs.total()
    headers = {**forwarded, "X-Forwarded-Proto": "https"}
    headers.update(sign("https://example.com/events", TOKEN))
    response = client.post("/answer", data=CALL, headers=headers)
    check_answer(response, runs=runs, before=before, genuine=False)


@pytest.mark.parametrize(
    ("signed_as", "sent_as"),
    [("v3", "v2"), ("v2", "v2"), ("v3", "ma-v2")],
)
def test_a_nonce_cannot_carry_the_rest_of_another_routes_url(
    client: Any, runs: Runs, signed_as: str, sent_as: str
) -> None:
    """V2 signs url + nonce: a signature for /menu/x (an IVR's /main and /main/choice are
    such a pair) sent to /menu with "/x" moved into the nonce signs the same bytes."""
    genuine = signed("/menu/x")
    nonce = genuine[f"X-Vobiz-Signature-{signed_as[-2:].upper()}-Nonce"]
    moved = "/x" + ("." if signed_as == "v3" else "") + nonce
    forged = {
        f"X-Vobiz-Signature-{sent_as.upper()}": genuine[f"X-Vobiz-Signature-{signed_as.upper()}"],
        "X-Vobiz-Signature-V2-Nonce": moved,
    }
    before = runs.total()
    response = client.post("/menu", data=CALL, headers=forged)
    check_answer(response, runs=runs, before=before, genuine=False)


def test_a_nonce_cannot_carry_a_trailing_digit_of_another_routes_path(
    client: Any, runs: Runs
) -> None:
    """/menu and /menu2: V2 signs url + nonce, so /menu2's signature with its 20-digit nonce
    N signs the same bytes as /menu with the nonce "2" + N; a nonce has exactly 20 digits."""
    genuine = signed("/menu2")
    nonce = "2" + genuine["X-Vobiz-Signature-V2-Nonce"]
    post_forged_v2(client, runs, "/menu", genuine["X-Vobiz-Signature-V2"], nonce)


def test_a_nonce_cannot_give_its_first_digit_to_another_routes_path(
    client: Any, runs: Runs
) -> None:
    """The other direction: /menu's signature with the nonce "2" + 19 digits signs the same
    bytes as /menu2 with those 19 digits. Taken, it ran /menu2's handler once the original
    left the replay window (or if it never reached this server)."""
    n = "2" + "0123456789012345678"
    genuine = sign(PUBLIC + "/menu", TOKEN, nonce_v2=n, nonce_v3="1" * 20)
    post_forged_v2(client, runs, "/menu2", genuine["X-Vobiz-Signature-V2"], n[1:])


def post_forged_v2(client: Any, runs: Runs, path: str, signature: str, nonce: str) -> None:
    """Send ``signature`` as a V2 signature with ``nonce`` to ``path``: refused, and no
    handler runs."""
    forged = {"X-Vobiz-Signature-V2": signature, "X-Vobiz-Signature-V2-Nonce": nonce}
    before = runs.total()
    response = client.post(path, data=CALL, headers=forged)
    check_answer(response, runs=runs, before=before, genuine=False)


@pytest.mark.parametrize("direct", [True, False])
def test_a_url_with_a_double_slash_is_checked_as_vobiz_called_it(direct: bool) -> None:
    """Werkzeug routes //answer to /answer but drops the extra slash from request.path;
    Vobiz signs the URL it called (an answer URL built as "https://host/" + "/answer"), so
    checking /answer refused every genuine webhook with 403 and dropped the call."""
    runs = Runs()
    app = make_flow(runs).create_app(direct=direct)
    request = {"method": "POST", "path": "//answer", "prefix": "", "script_name": "",
               "query": "", "body": urlencode(CALL).encode(), "content_type": FORM,
               "length": "exact", "headers": []}  # fmt: skip
    for raw_uri in (None, "//answer"):
        environ = _raw_environ(request, sign(PUBLIC + "//answer", TOKEN))
        if raw_uri:
            environ["RAW_URI"] = raw_uri
        status, body, _type = _raw_call(app, environ)
        assert status.startswith("200") and b"<Gather" in body, (status, body)
    assert runs.count["answer"] == 2
    # And a signature for /answer is no signature for //answer.
    status, _body, _type = _raw_call(app, _raw_environ(request, sign(PUBLIC + "/answer", TOKEN)))
    assert status.startswith("403") and runs.count["answer"] == 2


class _Unlisted(BaseException):
    """A library's own BaseException (as gevent's Timeout is)."""


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("error", [asyncio.CancelledError, _Unlisted])
def test_a_handler_raising_a_base_exception_still_gets_the_fallback(
    direct: bool, error: type[BaseException]
) -> None:
    """asyncio.CancelledError (out of a handler's asyncio.run) is no Exception: it once
    went past the dispatcher's guard, through Flask, to the WSGI server (a 500)."""
    flow = CallFlow("base", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    def fail(call: CallRequest) -> None:
        raise error()

    flow.add_route("/answer", fail)
    flow.add_route("/events", fail, name="events", status_callback=True)
    client = flow.create_app(direct=direct).test_client()
    answer = client.post("/answer", data=CALL, headers=signed("/answer"))
    assert answer.status_code == 200 and b"<Hangup/>" in answer.data
    events = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=signed("/events"))
    assert (events.status_code, events.data) == (200, b"")


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("stop", ["SystemExit", "GreenletExit"])
def test_a_handler_may_still_stop_the_process(direct: bool, stop: str) -> None:
    """The process being stopped, or (gevent, eventlet) the greenlet serving the request
    being killed: a fallback answer would keep it running."""
    flow = CallFlow("exit", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    # greenlet's own class, by name as the pipeline knows it (greenlet is not installed).
    stopping: type[BaseException] = (
        SystemExit if stop == "SystemExit" else type("GreenletExit", (BaseException,), {})
    )

    def leave(call: CallRequest) -> None:
        raise stopping(3)

    flow.add_route("/answer", leave)
    with pytest.raises(stopping):
        flow.create_app(direct=direct).test_client().post(
            "/answer", data=CALL, headers=signed("/answer")
        )


class _AsyncCallable:
    async def __call__(self, call: CallRequest) -> None:
        return None


async def _async_handler(call: CallRequest, extra: int = 0) -> None:
    return None


@pytest.mark.parametrize(
    "handler",
    [_async_handler, functools.partial(_async_handler, extra=1), _AsyncCallable()],
    ids=["async def", "partial", "async __call__"],
)
def test_an_async_handler_is_refused_when_declared(handler: Any) -> None:
    """Called without an event loop it returns a coroutine that never runs: a status
    callback route answered 200 and silently did nothing."""
    flow = CallFlow("async", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    with pytest.raises(ConfigurationError, match="not async def"):
        flow.add_route("/events", handler, status_callback=True)
    assert flow.routes == []


def test_a_call_uuid_with_a_line_break_cannot_forge_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A field the request carries goes into the log escaped when it holds a control
    character: "x\\nERROR forged" would otherwise read as a log line of its own."""
    flow = CallFlow("logs", public_url=PUBLIC, auth_token=TOKEN, state="memory://")

    @flow.route("/fails")
    def fails(call: CallRequest) -> Response:
        raise RuntimeError("boom")

    caplog.set_level(logging.DEBUG, logger="answerkit")
    call = {**CALL, "CallUUID": "c-1\nERROR flow support: forged"}
    response = flow.create_app().test_client().post("/fails", data=call, headers=signed("/fails"))
    assert response.status_code == 200
    logged = [r.getMessage() for r in caplog.records]
    assert any("forged" in m for m in logged), logged
    assert not any("\n" in m for m in logged), logged


@pytest.mark.parametrize("host", ["faß.de", "exa\u200dmple.com"])
def test_transfer_allow_list_compares_hosts_as_written(host: str) -> None:
    # Python's IDNA codec (2003) maps 'faß' to 'fass' and drops a zero-width joiner, where
    # the fetchers (IDNA 2008) keep them apart: compared that way, a URL to another host
    # passed an allow-list of 'fass.de' or 'example.com'.
    flow = CallFlow("f", public_url="https://voice.example.com", auth_token="t" * 20,
                    state="memory://", transfer_hosts=["fass.de", "example.com"])  # fmt: skip
    with pytest.raises(TransferArgumentError, match="is not allowed"):
        flow.transfers.target_url(f"https://{host}/hold")
