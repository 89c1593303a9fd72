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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

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

V2 = "X-Vobiz-Signature-V2"
V2_NONCE = "X-Vobiz-Signature-V2-Nonce"
V3 = "X-Vobiz-Signature-V3"
V3_NONCE = "X-Vobiz-Signature-V3-Nonce"
MA_V2 = "X-Vobiz-Signature-MA-V2"
MA_V3 = "X-Vobiz-Signature-MA-V3"

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]
"""A plain mapping, or anything iterating ``(name, value)`` pairs (Werkzeug ``Headers``)."""

# Order matters: V3 is what Vobiz documents today, V2 is the older scheme; the MA variants are
# only needed for sub-account callbacks (on a main account they equal V3/V2).
_SCHEMES: tuple[tuple[str, str, str, bytes], ...] = (
    ("v3", V3.lower(), V3_NONCE.lower(), b"."),
    ("ma-v3", MA_V3.lower(), V3_NONCE.lower(), b"."),
    ("v2", V2.lower(), V2_NONCE.lower(), b""),
    ("ma-v2", MA_V2.lower(), V2_NONCE.lower(), b""),
)
_SIG_PREFIX = "x-vobiz-signature"
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_SENSITIVE = ("auth", "token", "signature", "cookie", "secret", "password", "api-key")


# --------------------------------------------------------------------------- base URL


@lru_cache(maxsize=4096)
def base_url(url: str) -> str:
    """Return the part of ``url`` that Vobiz signs, normalised.

    * scheme and host lowercased; the default port (``:443`` for https, ``:80`` for http)
      dropped, any other port kept;
    * query string and fragment removed (spec §3.2);
    * the path kept byte for byte: same trailing slash, same percent-encoding;
    * userinfo (``user:pass@``) removed. Vobiz's own samples disagree here (spec §3.4: the
      Python sample keeps the netloc, the Node/Go/Ruby samples use host plus path); we follow
      the documented ``host[:port]`` form and the majority of samples. Credentials do not
      belong in callback URLs anyway.
    """
    scheme, netloc, path, _query, _fragment = urlsplit(url.strip())
    scheme = scheme.lower()
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):  # IPv6 literal: the port, if any, follows the bracket
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    host = host.lower()
    if port and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{path}"


# --------------------------------------------------------------------------- signing


def _nonce() -> str:
    return f"{secrets.randbelow(10**20):020d}"


def _b64_hmac(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


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


def _items(headers: HeadersLike) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return headers.items()
    items_method = getattr(headers, "items", None)  # Werkzeug Headers is not a Mapping
    if callable(items_method):
        result: Iterable[tuple[str, str]] = items_method()
        return result
    return headers


_CANONICAL = tuple((name, name.lower()) for name in (V3, V3_NONCE, MA_V3, V2, V2_NONCE, MA_V2))
_WSGI_KEYS = tuple(("HTTP_" + name.upper().replace("-", "_"), low) for name, low in _CANONICAL)


def _signature_headers(headers: HeadersLike) -> dict[str, str]:
    """Lowercase-keyed copy of the ``X-Vobiz-Signature*`` headers only."""
    environ = getattr(headers, "environ", None)
    if type(environ) is dict:
        # A WSGI request's headers (Werkzeug's EnvironHeaders): the server has already
        # folded every spelling of a name into one HTTP_* key, so six look-ups see all.
        found = {}
        for key, lowered in _WSGI_KEYS:
            value = environ.get(key)
            if isinstance(value, str) and (value := value.strip()):
                found[lowered] = value
        return found
    getter = None if isinstance(headers, dict) else getattr(headers, "get", None)
    if callable(getter):
        # Fast path for case-insensitive header objects (Werkzeug, requests): six lookups
        # instead of a scan of every header. A plain dict may spell the names any way
        # (``X-Vobiz-Signature-Ma-V3``), so it always takes the scan below.
        found = {}
        for name, lowered in _CANONICAL:
            value = getter(name)
            if isinstance(value, str) and value.strip():
                found[lowered] = value.strip()
        if found and all(nonce_h in found for _n, sig_h, nonce_h, _s in _SCHEMES if sig_h in found):
            return found
    found = {}
    for name, value in _items(headers):
        lowered = name.lower()
        if lowered.startswith(_SIG_PREFIX) and lowered not in found:
            found[lowered] = value.strip() if isinstance(value, str) else ""
    return found


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
            for raw in value.split(","):
                digest = decoded[raw] if raw in decoded else decoded.setdefault(raw, _decode(raw))
                if digest is None:
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


# --------------------------------------------------------------------------- public URL


def _trusted_value(value: str | None, trusted_hops: int) -> str | None:
    """The value set by the outermost trusted proxy, as Werkzeug's ``ProxyFix`` picks it."""
    if not value or trusted_hops <= 0:
        return None
    values = [v.strip() for v in value.split(",")]
    if len(values) < trusted_hops:
        return None
    return values[-trusted_hops] or None


def header_value(headers: HeadersLike | None, name: str) -> str | None:
    """The value of header ``name`` (any case) in a mapping or pairs, or None."""
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if callable(getter):
        value = getter(name)
        if value is None:
            value = getter(name.lower())
        if isinstance(value, str):
            return value
    wanted = name.lower()
    for key, value in _items(headers):
        if key.lower() == wanted:
            return value
    return None


# What a URL's host[:port] may hold (RFC 3986 reg-name or IP literal, then digits): anything
# else ("/", "?", "#", "@", "\\", spaces) would move the boundary between host and path.
_NETLOC = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Za-z:.]+\])(?::[0-9]*)?")


def _path_variants(path: str) -> list[str]:
    """The path as given, plus its percent-encoded form if the caller passed a decoded path.

    Flask's ``request.path`` is percent-decoded while Vobiz signs the URL as it sent it; the
    caller should pass the raw path (``environ["RAW_URI"]``), and this covers it if not.
    """
    variants = [path]
    quoted = quote(path, safe="/%:@!$&'()*+,;=-._~")
    if quoted != path:
        variants.append(quoted)
    if _LITERAL_PERCENT.search(path) and unquote(path) == path:
        # A decoded path with a '%' that starts no escape ("/50%off", from a server that
        # keeps no raw URI): url_for wrote it "/50%25off", which is what was signed.
        variants.append(quote(path, safe="/:@!$&'()*+,;=-._~"))
    return variants


_LITERAL_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")


def public_url_candidates(
    public_url: str | None,
    *,
    scheme: str,
    host: str,
    path: str,
    script_root: str = "",
    headers: HeadersLike | None = None,
    trusted_hops: int = 0,
) -> list[str]:
    """The URLs Vobiz may have signed for this request, best first (all normalised).

    * A configured ``public_url`` (e.g. ``"https://voice.example.com"`` or
      ``"https://voice.example.com/prefix"``) wins, and then the request's own host and any
      forwarded headers are ignored. The route path is appended to it, together with the
      mount prefix ``script_root`` unless ``public_url`` already ends with that prefix; when
      there is a prefix the other reading is offered as a second candidate.
    * Otherwise the request's ``scheme`` and ``host`` are used, replaced by
      ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` / ``X-Forwarded-Port`` only when
      ``trusted_hops > 0``, taking the value ``trusted_hops`` places from the right of a comma
      list, as Werkzeug's ``ProxyFix`` does. The mount prefix is kept.

    ``path`` should be the path as received on the wire (percent-encoding intact); a decoded
    path also works for the common cases.
    """
    if public_url:
        # The request's host and headers play no part: the answer depends on the route only.
        return list(_configured_candidates(public_url, script_root, path))
    script_root = script_root.rstrip("/")
    proto = _trusted_value(header_value(headers, "X-Forwarded-Proto"), trusted_hops) or scheme
    if proto.strip().lower() not in ("http", "https"):
        return []  # a forwarded scheme Vobiz never signs: no URL it could have signed
    fwd_host = _trusted_value(header_value(headers, "X-Forwarded-Host"), trusted_hops)
    fwd_port = _trusted_value(header_value(headers, "X-Forwarded-Port"), trusted_hops)
    netloc = fwd_host or host
    if fwd_port:
        # ProxyFix semantics: the forwarded port replaces any port in the host.
        if ":" in netloc.rpartition("]")[2]:
            netloc = netloc.rpartition(":")[0]
        netloc = f"{netloc}:{fwd_port}"
    if not _NETLOC.fullmatch(netloc):
        # A forwarded host or port may come from the client unchanged (a proxy that passes
        # X-Forwarded-Host through): "voice.example.com/menu?" would turn the URL checked
        # for /answer into /menu's, so a signature for one route would open another.
        return []
    return _expand([f"{proto.lower()}://{netloc}{script_root}"], script_root, path)


@lru_cache(maxsize=1024)
def _configured_candidates(public_url: str, script_root: str, path: str) -> tuple[str, ...]:
    """:func:`public_url_candidates` for a configured public URL (bounded cache: the path
    comes from the request, so an attacker could otherwise grow it without limit)."""
    script_root = script_root.rstrip("/")
    parts = urlsplit(public_url.strip())
    root = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    prefixes = [root + script_root]
    if script_root and root.endswith(script_root):
        prefixes.insert(0, root)
    elif script_root:
        prefixes.append(root)
    return tuple(_expand(prefixes, script_root, path))


def _expand(prefixes: list[str], script_root: str, path: str) -> list[str]:
    """Every prefix joined with every spelling of ``path``, normalised, best first."""
    paths = _path_variants(path or "/")
    candidates: list[str] = []
    for prefix in prefixes:
        urls = [prefix + p for p in paths]
        if paths[0] == "/" and not script_root:
            # A URL configured as "https://host" (no slash) may be signed without it.
            urls.append(prefix)
        for url in urls:
            try:
                candidates.append(base_url(url))
            except ValueError:
                # A malformed forwarded host ("[", "]") is no URL Vobiz could have signed.
                continue
    return list(dict.fromkeys(candidates))


# --------------------------------------------------------------------------- logging


def redact_headers(headers: HeadersLike) -> dict[str, str]:
    """A copy of ``headers`` that is safe to log.

    Drops the signature headers and every header whose name contains ``auth``, ``token``,
    ``signature``, ``cookie`` (or ``secret``, ``password``, ``api-key``): some Vobiz accounts
    receive ``auth-token``/``parent-auth-token`` in plain text on signed callbacks (spec §3.1).
    """
    safe: dict[str, str] = {}
    for name, value in _items(headers):
        lowered = name.lower()
        if any(word in lowered for word in _SENSITIVE):
            continue
        safe[name] = value
    return safe
