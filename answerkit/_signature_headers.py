"""The headers of a Vobiz webhook: the names of the signature headers, finding them in any
header object (a mapping, ``(name, value)`` pairs, Werkzeug's ``Headers``, a WSGI environ),
reading one header by name, and a header set made safe to log (:func:`redact_headers`).

Public names are imported from :mod:`answerkit.signature`, which re-exports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
_SENSITIVE = ("auth", "token", "signature", "cookie", "secret", "password", "api-key")


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
