from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from answerkit import CallFlow, Response, Speak
from answerkit.errors import ConfigurationError
from answerkit.signature import (
    MA_V2,
    MA_V3,
    V2,
    V2_NONCE,
    V3,
    V3_NONCE,
    Verifier,
    base_url,
    public_url_candidates,
    redact_headers,
    sign,
    verify,
)

URL = "https://voice.example.com/answer"
TOKEN = "MAtoken123"
N2 = "12345678901234567890"
N3 = "09876543210987654321"


def _b64_hmac(key: str, msg: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), msg.encode(), hashlib.sha256).digest()).decode()


# --------------------------------------------------------------------------- sign


def test_sign_matches_vectors_computed_with_openssl() -> None:
    # Expected values from `printf %s MSG | openssl dgst -sha256 -hmac KEY -binary | base64`.
    headers = sign(
        "https://Voice.Example.com:443/answer?x=1#frag",
        TOKEN,
        nonce_v2=N2,
        nonce_v3=N3,
        parent_auth_token="PARENTtok",
    )
    assert headers[V2] == "pSAtH/l/IMXwbJQBY+855+98O+b9rx8W5SBQIyjA9T8="
    assert headers[MA_V3] == "EurC8FhUmq/Zg9iEf7hBMSPX3R3l+pu7QaBfpXPy/dc="
    assert headers[V2_NONCE] == N2
    assert headers[V3_NONCE] == N3


def test_sign_follows_the_documented_formulas() -> None:
    headers = sign(URL + "?a=1&b=2", TOKEN, nonce_v2=N2, nonce_v3=N3, parent_auth_token="P")
    assert headers[V2] == _b64_hmac(TOKEN, URL + N2)
    assert headers[V3] == _b64_hmac(TOKEN, URL + "." + N3)
    assert headers[MA_V2] == _b64_hmac("P", URL + N2)
    assert headers[MA_V3] == _b64_hmac("P", URL + "." + N3)
    assert not any(v.endswith("\n") for v in headers.values())


def test_sign_without_parent_token_makes_ma_equal_to_v2_v3() -> None:
    headers = sign(URL, TOKEN)
    assert headers[MA_V2] == headers[V2]
    assert headers[MA_V3] == headers[V3]


@pytest.mark.parametrize("header", [V2, V3, MA_V3])
def test_a_signature_one_bit_off_anywhere_is_refused(header: str) -> None:
    # Every byte of the digest counts: a comparison that skipped one (or compared a
    # prefix) would let a near-miss through. Each byte of a genuine signature is flipped
    # in turn, the others left as they are.
    genuine = sign(URL, TOKEN)
    digest = base64.b64decode(genuine[header])
    assert verify(genuine, [URL], [TOKEN]).ok
    for i in range(len(digest)):
        for bit in (0x01, 0x80):
            forged = bytearray(digest)
            forged[i] ^= bit
            only = {k: v for k, v in genuine.items() if "Signature" not in k or "Nonce" in k}
            only[header] = base64.b64encode(bytes(forged)).decode()
            assert not verify(only, [URL], [TOKEN]).ok, (header, i, bit)


def test_sign_generates_distinct_20_digit_nonces() -> None:
    seen = set()
    for _ in range(50):
        headers = sign(URL, TOKEN)
        n2, n3 = headers[V2_NONCE], headers[V3_NONCE]
        assert len(n2) == len(n3) == 20
        assert n2.isdigit() and n3.isdigit()
        assert n2 != n3
        seen.add(n2)
    assert len(seen) == 50


# --------------------------------------------------------------------------- base_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Voice.EXAMPLE.com/Answer", "https://voice.example.com/Answer"),
        ("https://voice.example.com:443/answer", "https://voice.example.com/answer"),
        ("http://voice.example.com:80/answer", "http://voice.example.com/answer"),
        ("https://voice.example.com:8443/answer", "https://voice.example.com:8443/answer"),
        ("http://voice.example.com:443/answer", "http://voice.example.com:443/answer"),
        ("https://voice.example.com/answer/", "https://voice.example.com/answer/"),
        ("https://voice.example.com/a%2Fb/%7Euser", "https://voice.example.com/a%2Fb/%7Euser"),
        ("https://voice.example.com/answer?x=1&y=2#frag", "https://voice.example.com/answer"),
        ("https://user:pass@voice.example.com/answer", "https://voice.example.com/answer"),
        ("https://[2001:DB8::1]:443/answer", "https://[2001:db8::1]/answer"),
        ("https://[2001:db8::1]:8443/answer", "https://[2001:db8::1]:8443/answer"),
        ("https://voice.example.com:/answer", "https://voice.example.com/answer"),
        ("https://voice.example.com", "https://voice.example.com"),
    ],
)
def test_base_url_normalisation(url: str, expected: str) -> None:
    assert base_url(url) == expected


# --------------------------------------------------------------------------- verify


def test_verify_accepts_a_signed_request() -> None:
    headers = sign(URL, TOKEN)
    result = verify(headers, [URL], [TOKEN])
    assert result.ok and result
    assert result.reason == "ok"
    assert result.scheme == "v3"
    assert result.nonce == headers[V3_NONCE]
    assert result.signature == headers[V3]
    assert result.url == URL


def test_verify_ignores_the_query_string() -> None:
    headers = sign(URL + "?attempt=2", TOKEN)
    assert verify(headers, [URL + "?attempt=3&other=1"], [TOKEN]).ok


def test_verify_reads_headers_case_insensitively() -> None:
    headers = {k.lower(): v for k, v in sign(URL, TOKEN).items()}
    assert verify(headers, [URL], [TOKEN]).ok
    upper = {k.upper(): v for k, v in sign(URL, TOKEN).items()}
    assert verify(upper, [URL], [TOKEN]).ok


def test_verify_accepts_werkzeug_headers() -> None:
    headers = Headers([*sign(URL, TOKEN).items(), ("Content-Type", "x")])
    assert verify(headers, [URL], [TOKEN]).ok


def test_verify_unsigned() -> None:
    result = verify({"Content-Type": "application/x-www-form-urlencoded"}, [URL], [TOKEN])
    assert not result.ok
    assert result.reason == "unsigned"
    empty = verify({V3: "", V2: "  "}, [URL], [TOKEN])
    assert empty.reason == "unsigned"


def test_verify_mismatch_on_wrong_token_url_or_nonce() -> None:
    headers = sign(URL, TOKEN)
    assert verify(headers, [URL], ["other"]).reason == "mismatch"
    assert verify(headers, [URL + "/"], [TOKEN]).reason == "mismatch"
    assert verify(headers, ["http://voice.example.com/answer"], [TOKEN]).reason == "mismatch"
    tampered = dict(headers, **{V3_NONCE: N3, V2_NONCE: N2})
    result = verify(tampered, [URL], [TOKEN])
    assert not result.ok and result.reason == "mismatch"
    assert result.nonce is None and result.signature is None


def test_verify_falls_back_to_v2_and_ma_variants() -> None:
    headers = sign(URL, "SUBtoken", parent_auth_token="MAINtoken")
    only_v2 = {V2: headers[V2], V2_NONCE: headers[V2_NONCE]}
    assert verify(only_v2, [URL], ["SUBtoken"]).scheme == "v2"
    # A sub-account callback checked with the main account's token only: MA-V3 matches.
    result = verify(headers, [URL], ["MAINtoken"])
    assert result.ok and result.scheme == "ma-v3"
    only_ma_v2 = {MA_V2: headers[MA_V2], V2_NONCE: headers[V2_NONCE]}
    assert verify(only_ma_v2, [URL], ["MAINtoken"]).scheme == "ma-v2"


def test_verify_missing_nonce_is_a_mismatch() -> None:
    headers = sign(URL, TOKEN)
    del headers[V3_NONCE], headers[V2_NONCE]
    assert verify(headers, [URL], [TOKEN]).reason == "mismatch"


def test_verify_tries_every_token_and_candidate() -> None:
    headers = sign(URL, "new-token")
    candidates = ["http://internal:8000/answer", URL]
    result = verify(headers, candidates, ["old-token", "new-token"])
    assert result.ok and result.url == URL


def test_verify_tolerates_comma_lists_and_bad_base64() -> None:
    headers = sign(URL, TOKEN)
    headers[V3] = f"not base64!!, {base64.b64encode(b'short').decode()}, {headers[V3]}"
    result = verify(headers, [URL], [TOKEN])
    assert result.ok and result.scheme == "v3"
    garbage = {V3: "%%%,@@@", V3_NONCE: N3}
    assert verify(garbage, [URL], [TOKEN]).reason == "mismatch"


def test_a_long_signature_list_costs_at_most_a_few_hmacs(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unsigned request filled its headers with entries: one HMAC each, per token and
    # candidate URL. Only the first four entries are tried, a repeated one once.
    from answerkit import signature

    compared: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(signature.hmac, "compare_digest", counting)
    junk = [base64.b64encode(bytes([i]) * 32).decode() for i in range(200)]
    forged = {V3: ",".join(junk), V3_NONCE: N3, V2: ",".join(junk[:1] * 200), V2_NONCE: N2}
    assert verify(forged, [URL], [TOKEN]).reason == "mismatch"
    assert len(compared) == signature.MAX_SIGNATURES_PER_HEADER  # V2's repeats its first
    headers = sign(URL, TOKEN)
    late = {V3: ",".join([*junk[:4], headers[V3]]), V3_NONCE: headers[V3_NONCE]}
    assert verify(late, [URL], [TOKEN]).reason == "mismatch"  # past the first four
    first = {**headers, V3: ",".join([headers[V3], *junk])}
    assert verify(first, [URL], [TOKEN]).ok


def test_verify_skips_undecodable_v3_and_uses_v2() -> None:
    headers = sign(URL, TOKEN)
    headers[V3] = "####"
    headers[MA_V3] = "####"
    assert verify(headers, [URL], [TOKEN]).scheme == "v2"


def test_verify_accepts_a_single_string_token_and_url() -> None:
    headers = sign(URL, TOKEN)
    assert verify(headers, URL, TOKEN).ok  # a str is a Sequence[str]: taken as one item


def test_verifier_object_reused_across_requests() -> None:
    verifier = Verifier(["a", "b"])
    for token in ("a", "b", "a"):
        assert verifier.verify(sign(URL, token), [URL]).ok
    assert not verifier.verify(sign(URL, "c"), [URL]).ok
    assert not Verifier([]).verify(sign(URL, "a"), [URL]).ok


def test_replay_keys_survive_dropping_headers() -> None:
    headers = sign(URL, TOKEN)
    first = verify(headers, [URL], [TOKEN])
    again = verify(dict(headers), [URL], [TOKEN])
    assert first.replay_keys == again.replay_keys
    # An attacker strips the V3 pair and replays with V2 only: still one key in common.
    stripped = {k: v for k, v in headers.items() if "V3" not in k}
    replay = verify(stripped, [URL], [TOKEN])
    assert replay.ok and replay.scheme == "v2"
    assert set(replay.replay_keys) & set(first.replay_keys)
    # Keys are hashed: neither the signature nor the nonce appears in them.
    assert not any(headers[V3] in k or headers[V3_NONCE] in k for k in first.replay_keys)
    assert set(verify(sign(URL, TOKEN), [URL], [TOKEN]).replay_keys).isdisjoint(first.replay_keys)


_path_chars = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), max_codepoint=0x7F)
    | st.sampled_from("-._~%/"),
    max_size=30,
)


@given(path=_path_chars, token=st.text(min_size=1, max_size=40), slash=st.booleans())
def test_sign_verify_round_trip(path: str, token: str, slash: bool) -> None:
    url = f"https://Host.Example:443/{path}{'/' if slash else ''}?q=1"
    headers = sign(url, token)
    assert verify(headers, [base_url(url)], [token]).ok
    assert not verify(headers, [base_url(url) + "x"], [token]).ok


# --------------------------------------------------------------------------- public URL


def test_configured_public_url_wins_over_forwarded_headers() -> None:
    candidates = public_url_candidates(
        "https://voice.example.com",
        scheme="http",
        host="10.0.0.5:8000",
        path="/answer",
        headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
        trusted_hops=1,
    )
    assert candidates == ["https://voice.example.com/answer"]


def test_configured_public_url_with_prefix_and_script_root() -> None:
    # The proxy strips the prefix: public_url carries it, the app sees no script_root.
    assert public_url_candidates(
        "https://voice.example.com/ivr/", scheme="http", host="app:8000", path="/answer"
    ) == ["https://voice.example.com/ivr/answer"]
    # The app is mounted at /ivr (SCRIPT_NAME) and public_url is the bare host.
    assert (
        public_url_candidates(
            "https://voice.example.com",
            scheme="http",
            host="app",
            script_root="/ivr",
            path="/answer",
        )[0]
        == "https://voice.example.com/ivr/answer"
    )
    # public_url already names the mount point: the only reading. Doubled, it was also the
    # URL of the route at /ivr/answer, whose signatures then opened /answer.
    assert public_url_candidates(
        "https://voice.example.com/ivr",
        scheme="http",
        host="app",
        script_root="/ivr",
        path="/answer",
    ) == ["https://voice.example.com/ivr/answer"]


def test_under_a_prefix_the_public_url_names_one_route_signature_opens_no_other() -> None:
    # gunicorn --env SCRIPT_NAME=/menu, public_url ending with /menu (as advised): routes
    # /choice and /menu/choice. A signature for /menu/choice's URL verified at /choice.
    flow = CallFlow("pre", public_url="https://voice.example.com/menu", auth_token=TOKEN,
                    state="memory://")  # fmt: skip
    flow.add_route("/choice", lambda call: Response(Speak("choice")), name="choice")
    flow.add_route("/menu/choice", lambda call: Response(Speak("menu")), name="menu_choice")
    c = flow.create_app().test_client()
    body = {"CallUUID": "c-pre", "Event": "StartApp"}
    theirs = sign(flow.url_for("menu_choice"), TOKEN)
    r = c.post("/choice", data=body, headers=theirs, base_url="http://localhost/menu")
    assert r.status_code == 403
    own = sign(flow.url_for("choice"), TOKEN)
    r = c.post("/choice", data=body, headers=own, base_url="http://localhost/menu")
    assert r.status_code == 200 and b"choice" in r.data


def test_forwarded_headers_ignored_without_trusted_hops() -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "voice.example.com"}
    assert public_url_candidates(
        None, scheme="http", host="127.0.0.1:8000", path="/answer", headers=headers
    ) == ["http://127.0.0.1:8000/answer"]


def test_forwarded_headers_honoured_with_trusted_hops() -> None:
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "Voice.Example.com"}
    assert public_url_candidates(
        None,
        scheme="http",
        host="127.0.0.1:8000",
        script_root="/app",
        path="/answer",
        headers=headers,
        trusted_hops=1,
    ) == ["https://voice.example.com/app/answer"]


def test_forwarded_lists_pick_the_trusted_hop_from_the_right() -> None:
    headers = Headers(
        [("X-Forwarded-Host", "spoofed.example, voice.example.com, lb.internal"),
         ("X-Forwarded-Proto", "http, https, https")]
    )  # fmt: skip
    one = public_url_candidates(
        None, scheme="http", host="x", path="/a", headers=headers, trusted_hops=1
    )
    assert one == ["https://lb.internal/a"]
    two = public_url_candidates(
        None, scheme="http", host="x", path="/a", headers=headers, trusted_hops=2
    )
    assert two == ["https://voice.example.com/a"]
    # Fewer values than trusted hops: the header is ignored, as ProxyFix does.
    five = public_url_candidates(
        None, scheme="http", host="x", path="/a", headers=headers, trusted_hops=5
    )
    assert five == ["http://x/a"]


def test_forwarded_port_replaces_the_host_port() -> None:
    headers = {"X-Forwarded-Host": "voice.example.com:8080", "X-Forwarded-Port": "443",
               "X-Forwarded-Proto": "https"}  # fmt: skip
    assert public_url_candidates(
        None, scheme="http", host="x", path="/a", headers=headers, trusted_hops=1
    ) == ["https://voice.example.com/a"]


def test_decoded_path_also_tried_percent_encoded() -> None:
    candidates = public_url_candidates(
        "https://voice.example.com", scheme="http", host="x", path="/menu/é a"
    )
    assert candidates[0] == "https://voice.example.com/menu/é a"
    assert "https://voice.example.com/menu/%C3%A9%20a" in candidates


def test_root_path_also_tried_without_slash() -> None:
    assert public_url_candidates(
        "https://voice.example.com", scheme="http", host="x", path="/"
    ) == [
        "https://voice.example.com/",
        "https://voice.example.com",
    ]


def test_end_to_end_behind_a_tls_terminating_proxy() -> None:
    headers = sign("https://voice.example.com/app/answer", TOKEN)
    headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "voice.example.com"})

    def candidates(public_url: str | None, hops: int) -> list[str]:
        return public_url_candidates(
            public_url,
            scheme="http",
            host="127.0.0.1:8000",
            script_root="/app",
            path="/answer",
            headers=headers,
            trusted_hops=hops,
        )

    assert not verify(headers, candidates(None, 0), [TOKEN]).ok
    assert verify(headers, candidates(None, 1), [TOKEN]).ok
    assert verify(headers, candidates("https://voice.example.com", 0), [TOKEN]).ok


# --------------------------------------------------------------------------- redaction


def test_redact_headers_drops_secrets() -> None:
    headers = sign(URL, TOKEN)
    headers.update(
        {
            "auth-token": "plain-secret",
            "parent-auth-token": "plain-parent",
            "Authorization": "Basic xyz",
            "Cookie": "session=1",
            "X-Vobiz-Signature": "legacy",
            "User-Agent": "Vobiz",
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Forwarded-For": "35.154.59.246",
        }
    )
    safe = redact_headers(headers)
    assert safe == {
        "User-Agent": "Vobiz",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Forwarded-For": "35.154.59.246",
    }
    assert redact_headers(Headers(list(headers.items()))) == safe


def test_a_v3_signature_moved_to_the_v2_header_is_refused() -> None:
    # V2 signs url + nonce and V3 signs url + "." + nonce: a V3 signature sent as V2 with
    # "." + the V3 nonce signs the same bytes. No Vobiz nonce starts with ".", so it is
    # refused; its replay key would meet the original's record anyway.
    headers = sign(URL, TOKEN)
    first = verify(headers, [URL], [TOKEN])
    moved = {V2: headers[V3], V2_NONCE: "." + headers[V3_NONCE]}
    replay = verify(moved, [URL], [TOKEN])
    assert not replay.ok
    assert set(replay.replay_keys) & set(first.replay_keys)


@pytest.mark.parametrize("proto", ["a:[", "ftp", "javascript", "https:", ""])
def test_a_forwarded_scheme_other_than_http_s_gives_no_candidate(proto: str) -> None:
    # "a:[" once made the signature check raise (a URL normalised twice), so the webhook
    # got the fallback document instead of a 403.
    found = public_url_candidates(
        None, scheme="http", host="localhost", path="/answer",
        headers={"X-Forwarded-Proto": proto}, trusted_hops=1,
    )  # fmt: skip
    if proto:
        assert found == []
        assert verify(sign("http://localhost/answer", TOKEN), found, [TOKEN]).ok is False
    else:  # an empty forwarded value leaves the request's own scheme
        assert found[0] == "http://localhost/answer"


@pytest.mark.parametrize("nonce", ["test-nonce-1", "1" * 21, "1" * 19, "7", "." + "1" * 20, ""])
def test_sign_refuses_a_nonce_verify_would_not_take(nonce: str) -> None:
    """verify() takes 20-digit nonces only (as Vobiz sends them): signing with another
    would give a test a 403 it could not explain."""
    with pytest.raises(ConfigurationError, match="exactly 20 digits"):
        sign(URL, TOKEN, nonce_v2=nonce)


@pytest.mark.parametrize(
    ("url", "token", "says"),
    [
        ("/answer", TOKEN, "url must be the absolute URL Vobiz calls"),
        ("voice.example.com/answer", TOKEN, "pass flow.url_for(name)"),
        ("ftp://voice.example.com/answer", TOKEN, "https://host/path"),
        ("https:///answer", TOKEN, "https://host/path"),
        (URL, None, "auth_token must be the token as text, got NoneType"),
        (URL, b"tok", "decode bytes first"),
        (URL, "", "got an empty string"),
    ],
)
def test_sign_refuses_what_no_request_could_verify_against(
    url: str, token: object, says: str
) -> None:
    # sign("/answer", ...) signed ":///answer": every request a 403 that blamed the token.
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        sign(url, token)  # type: ignore[arg-type]


def test_a_flow_without_a_public_url_warns_that_the_host_header_chooses_the_signed_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A sub-account's callback carries MA signatures made with the parent's token: sent
    # with its own Host to a parent's app that has no public_url, it verifies there.
    from answerkit import CallFlow

    flow = CallFlow("no-public", auth_token="parent-token-0123456789", state="memory://")
    flow.add_route("/answer", lambda call: None, status_callback=True)
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        flow.create_app()
    assert "no public_url, so signatures are checked against the URL" in caplog.text
    assert "read from the request's Host header" in caplog.text
    # And what else fails without it: the URLs a handler builds.
    assert "flow.url_for (a Gather's action, say), flow.transfer and the recipes" in caplog.text
    proxied = CallFlow("proxied", auth_token="parent-token-0123456789", state="memory://",
                       trusted_proxies=1)  # fmt: skip
    proxied.add_route("/answer", lambda call: None, status_callback=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        proxied.create_app()
    assert "read from the request's X-Forwarded-Proto/-Host" in caplog.text
    assert "url_for" in caplog.text
    pinned = CallFlow("pinned", public_url="https://voice.example.com",
                      auth_token="parent-token-0123456789", state="memory://")  # fmt: skip
    pinned.add_route("/answer", lambda call: None, status_callback=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        pinned.create_app()
    assert "no public_url" not in caplog.text
