"""Which URL Vobiz signed: the normalised base URL it signs (:func:`base_url`), and the
URLs it may have called for a request, rebuilt behind a proxy or tunnel
(:func:`public_url_candidates`).

Public names are imported from :mod:`answerkit.signature`, which re-exports them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from answerkit._signature_headers import HeadersLike, header_value

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


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


# --------------------------------------------------------------------------- public URL


def _trusted_value(value: str | None, trusted_hops: int) -> str | None:
    """The value set by the outermost trusted proxy, as Werkzeug's ``ProxyFix`` picks it."""
    if not value or trusted_hops <= 0:
        return None
    values = [v.strip() for v in value.split(",")]
    if len(values) < trusted_hops:
        return None
    return values[-trusted_hops] or None


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
      mount prefix ``script_root`` unless ``public_url`` already ends with that prefix; a
      public URL that lacks the prefix (a setup warned of) is also read without it.
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
    if script_root and root.endswith(script_root):
        # The public URL names the prefix (as url_for's URLs do): the only reading. Joined
        # once more (root + prefix + path) it would be the URL of the route at prefix +
        # path, whose signatures then opened this route too (/choice and /menu/choice
        # under SCRIPT_NAME=/menu).
        prefixes = [root]
    else:
        prefixes = [root + script_root]
        if script_root:
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
