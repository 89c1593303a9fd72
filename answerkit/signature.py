"""Vobiz webhook signatures: compute them, verify them, and find the URL Vobiz signed.

Vobiz signs only the *base URL* it called plus a random nonce (spec §3.2)::

    base_url = scheme "://" host[:port] path          (no query string, no fragment)
    V2 = base64(HMAC-SHA256(auth_token, base_url + nonce_v2))
    V3 = base64(HMAC-SHA256(auth_token, base_url + "." + nonce_v3))

``MA-V2``/``MA-V3`` are the same algorithms keyed with the parent (main) account's token and
reuse the V2/V3 nonces. A valid signature proves that Vobiz requested this path; it says nothing
about the form fields, whose integrity rests on TLS.

:func:`sign` produces genuine headers (for tests and the simulator), :func:`verify` checks them,
:func:`public_url_candidates` rebuilds the URL Vobiz called when the app sits behind a proxy or
tunnel, and :func:`redact_headers` makes a header set safe to log.

This module is the public home of those names and computes and checks the signatures; the
headers they travel in, and :func:`redact_headers`, live in answerkit/_signature_headers.py,
and the URL Vobiz signed (:func:`base_url`, :func:`public_url_candidates`) in
answerkit/_signature_urls.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from answerkit._signature_headers import _SCHEMES, _signature_headers
from answerkit._signature_headers import MA_V2 as MA_V2
from answerkit._signature_headers import MA_V3 as MA_V3
from answerkit._signature_headers import V2 as V2
from answerkit._signature_headers import V2_NONCE as V2_NONCE
from answerkit._signature_headers import V3 as V3
from answerkit._signature_headers import V3_NONCE as V3_NONCE
from answerkit._signature_headers import HeadersLike as HeadersLike
from answerkit._signature_headers import header_value as header_value
from answerkit._signature_headers import redact_headers as redact_headers
from answerkit._signature_urls import base_url as base_url
from answerkit._signature_urls import public_url_candidates as public_url_candidates
from answerkit.errors import ConfigurationError

__all__ = [
    "MA_V2",
    "MA_V3",
    "V2",
    "V2_NONCE",
    "V3",
    "V3_NONCE",
    "Verification",
    "Verifier",
    "base_url",
    "public_url_candidates",
    "redact_headers",
    "sign",
    "verify",
]


# --------------------------------------------------------------------------- signing


def _nonce() -> str:
    return f"{secrets.randbelow(10**20):020d}"


def _b64_hmac(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _check_signing_args(url: object, auth_token: object, parent: object) -> None:
    """Refuse what no request could verify against: a URL with no scheme or host signs
    ":///answer" (every request a 403 blaming the token), a token that is not text fails
    deep inside the HMAC."""
    if not isinstance(url, str):
        raise ConfigurationError(f"sign: url must be text, got {type(url).__name__}")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"sign: url must be the absolute URL Vobiz calls (https://host/path), got "
            f"{url[:200]!r}: pass flow.url_for(name), or public_url + the route's path"
        )
    for name, token in (("auth_token", auth_token), ("parent_auth_token", parent)):
        if token is None and name == "parent_auth_token":
            continue
        if not isinstance(token, str) or not token:
            got = "an empty string" if token == "" else type(token).__name__
            raise ConfigurationError(
                f"sign: {name} must be the token as text, got {got}"
                + (" (decode bytes first: token.decode())" if isinstance(token, bytes) else "")
            )


def sign(
    url: str,
    auth_token: str,
    *,
    nonce_v2: str | None = None,
    nonce_v3: str | None = None,
    parent_auth_token: str | None = None,
) -> dict[str, str]:
    """Return the signature headers Vobiz would send when calling ``url``.

    Nonces are 20 random digits unless given (V2 and V3 get different ones, as on the wire).
    The MA headers are keyed with ``parent_auth_token``, or with ``auth_token`` for a main
    account (where Vobiz sends MA equal to V2/V3).
    """
    _check_signing_args(url, auth_token, parent_auth_token)
    for given in (nonce_v2, nonce_v3):
        if given is not None and not _NONCE.fullmatch(given):
            # verify() takes only what Vobiz sends: a test signing with "nonce-1" would get
            # a 403 it could not explain.
            raise ConfigurationError(
                f"nonce {given!r}: a Vobiz nonce is exactly 20 digits (spec §3.1), such as "
                "'00000000000000000001'"
            )
    base = base_url(url)
    if nonce_v2 is None:
        nonce_v2 = _nonce()
    if nonce_v3 is None:
        nonce_v3 = _nonce()
        while nonce_v3 == nonce_v2:
            nonce_v3 = _nonce()
    parent = auth_token if parent_auth_token is None else parent_auth_token
    return {
        V2: _b64_hmac(auth_token, base + nonce_v2),
        V2_NONCE: nonce_v2,
        V3: _b64_hmac(auth_token, f"{base}.{nonce_v3}"),
        V3_NONCE: nonce_v3,
        MA_V2: _b64_hmac(parent, base + nonce_v2),
        MA_V3: _b64_hmac(parent, f"{base}.{nonce_v3}"),
    }


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of :func:`verify`.

    ``reason`` is ``"ok"``, ``"unsigned"`` (no signature header at all: the caller decides
    whether to allow that) or ``"mismatch"`` (signed, but no token/URL pair reproduces it).
    On success ``scheme`` (``"v3"``, ``"ma-v3"``, ``"v2"``, ``"ma-v2"``), ``nonce``,
    ``signature`` and ``url`` describe the pair that matched.

    ``replay_keys`` holds one opaque key per ``(nonce, signature)`` pair present in the
    request (hashed, so the store never holds a signature). Remember all of them and reject
    the request if *any* was seen before: checking only the matching pair would let a replay
    slip through by dropping the V3 headers and keeping V2.
    """

    ok: bool
    reason: Literal["ok", "unsigned", "mismatch"]
    scheme: str | None = None
    nonce: str | None = None
    signature: str | None = field(default=None, repr=False)
    url: str | None = None
    replay_keys: tuple[str, ...] = field(default=(), repr=False)

    def __bool__(self) -> bool:
        return self.ok


_DIGEST_SIZE = hashlib.sha256().digest_size
# Exactly the 20 digits Vobiz sends (spec §3.1). V2 signs url + nonce with nothing between
# them, so any other length lets digits move between the path and the nonce: a signature
# for /menu2 would verify at /menu with the nonce "2" + nonce, and one for /menu (nonce
# "2...") at /menu2 with the nonce's other 19 digits.
_NONCE = re.compile(r"[0-9]{20}", re.ASCII)


def _decode(signature: str) -> bytes | None:
    """The HMAC digest a signature entry carries, or None if it is not one."""
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return given if len(given) == _DIGEST_SIZE else None


def _replay_key(digest: bytes) -> str:
    # Keyed on the decoded digest alone, not the header text or the nonce: a replay that
    # re-spells the base64, wraps the signature in a comma list, or moves a V3 signature
    # to the V2 header with "." + nonce as its nonce (V2 signs url + nonce, V3 signs
    # url + "." + nonce: the same bytes) must hit the same key. The digest already commits
    # to the URL and the nonce.
    # Hashed, so the store holds nothing that could be turned back into a header.
    return f"sig:{hashlib.sha256(digest).hexdigest()[:40]}"


#: How many entries of a comma-separated signature header are tried (Vobiz sends one).
MAX_SIGNATURES_PER_HEADER = 4


class Verifier:
    """Verifies signatures against a fixed set of auth tokens.

    Build one per flow: the HMAC key schedule of every token is computed once here, so a
    webhook costs one HMAC per (token, URL) tried, and normally just one.
    """

    __slots__ = ("_keys",)

    def __init__(self, auth_tokens: Sequence[str]) -> None:
        if isinstance(auth_tokens, str):
            auth_tokens = [auth_tokens]
        self._keys = tuple(
            hmac.new(token.encode(), digestmod=hashlib.sha256) for token in auth_tokens if token
        )

    def verify(self, headers: HeadersLike, candidate_urls: Sequence[str]) -> Verification:
        """Check ``headers`` against every candidate URL (normalised with :func:`base_url`)."""
        reason, match, replay_keys = self._match(headers, candidate_urls)
        if match is None:
            return Verification(ok=False, reason=reason, replay_keys=replay_keys)
        scheme, nonce, signature, url = match
        return Verification(
            ok=True,
            reason="ok",
            scheme=scheme,
            nonce=nonce,
            signature=signature,
            url=url,
            replay_keys=replay_keys,
        )

    def check(
        self, headers: HeadersLike, candidate_urls: Sequence[str]
    ) -> tuple[Literal["ok", "unsigned", "mismatch"], tuple[str, ...]]:
        """:meth:`verify`'s ``reason`` and ``replay_keys`` alone, for the webhook path
        (building the :class:`Verification` costs as much as a quarter of the check)."""
        reason, _match, replay_keys = self._match(headers, candidate_urls)
        return reason, replay_keys

    def _match(
        self, headers: HeadersLike, candidate_urls: Sequence[str]
    ) -> tuple[
        Literal["ok", "unsigned", "mismatch"], tuple[str, str, str, str] | None, tuple[str, ...]
    ]:
        """(reason, the matching (scheme, nonce, signature, url) or None, replay keys)."""
        sig_headers = _signature_headers(headers)
        # (scheme, separator, nonce, raw entry, digest) for every decodable signature entry.
        entries: list[tuple[str, bytes, str, str, bytes]] = []
        digests: dict[bytes, None] = {}
        decoded: dict[str, bytes | None] = {}  # MA-V3 usually repeats V3 word for word
        signed = False
        fine_nonces: set[str] = set()
        for name, sig_h, nonce_h, sep in _SCHEMES:
            value = sig_headers.get(sig_h)
            if not value:
                continue
            signed = True
            nonce = sig_headers.get(nonce_h, "")
            # Vobiz's nonces are digits. Anything else could carry the end of another URL:
            # a signature for /main/choice, sent to /main as V2 with the nonce "/choice" +
            # nonce, signs the same bytes (url + nonce). Checked once per header.
            if nonce not in fine_nonces:
                if not _NONCE.fullmatch(nonce):
                    nonce = ""
                else:
                    fine_nonces.add(nonce)
            # A list is tolerated (the SDKs split on commas), but only its first entries are
            # tried, each once: an unsigned request could otherwise make a worker compute an
            # HMAC per entry, token and candidate URL, for as many entries as headers hold.
            for raw in value.split(",")[:MAX_SIGNATURES_PER_HEADER]:
                digest = decoded[raw] if raw in decoded else decoded.setdefault(raw, _decode(raw))
                if digest is None or digest in digests:
                    continue
                digests[digest] = None
                if nonce:
                    entries.append((name, sep, nonce, raw.strip(), digest))
        if not signed:
            return "unsigned", None, ()
        # MA-V3 repeats V3 on a main account: each distinct digest is one key.
        replay_keys = tuple(_replay_key(digest) for digest in digests)
        if isinstance(candidate_urls, str):
            candidate_urls = [candidate_urls]
        bases = []
        for url in candidate_urls:
            try:
                bases.append(base_url(url))
            except ValueError:  # malformed ("[" in the host): no URL Vobiz could have signed
                continue
        encoded = [(base, base.encode("utf-8", "surrogateescape")) for base in bases]
        for name, sep, nonce, raw, given in entries:
            nonce_bytes = sep + nonce.encode("utf-8", "surrogateescape")
            for key in self._keys:
                for base, base_bytes in encoded:
                    mac = key.copy()
                    mac.update(base_bytes + nonce_bytes)
                    if hmac.compare_digest(given, mac.digest()):
                        return "ok", (name, nonce, raw, base), replay_keys
        return "mismatch", None, replay_keys


@lru_cache(maxsize=16)
def _verifier(tokens: tuple[str, ...]) -> Verifier:
    return Verifier(tokens)


def verify(
    headers: HeadersLike,
    candidate_urls: Sequence[str],
    auth_tokens: Sequence[str],
) -> Verification:
    """Verify the Vobiz signature headers of one webhook (spec §3.3).

    Headers are read case-insensitively; V3, MA-V3, V2 and MA-V2 are tried in that order;
    a comma-separated list of signatures is tolerated and undecodable entries are skipped;
    every token (rotation, parent account) is tried against every candidate URL, and the
    comparison is constant-time. Use a :class:`Verifier` directly to keep the per-token
    set-up out of the request path (this function caches one per token tuple).
    """
    tokens = (auth_tokens,) if isinstance(auth_tokens, str) else tuple(auth_tokens)
    return _verifier(tokens).verify(headers, candidate_urls)
