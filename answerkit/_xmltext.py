"""What XML text may hold and how it is escaped; the shape of an absolute URL.

Shared by attribute values (``_attributes``) and element text (``_tables``): both must never
let through a character XML cannot carry, and both escape with the same rules.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import NoReturn, Protocol, TypeVar
from urllib.parse import urlsplit

_V = TypeVar("_V")

# XML 1.0 Char production, negated: control characters other than \t \n \r, lone
# surrogates and U+FFFE/U+FFFF. lxml refuses them and Vobiz drops the call (8011).
_BAD_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def bad_xml_char(s: str) -> str | None:
    """The first character of ``s`` that XML cannot carry, or None."""
    # isprintable() is a C-speed fast path: every printable character is XML-legal.
    if s.isprintable():
        return None
    m = _BAD_XML.search(s)
    return None if m is None else m.group()


#: The whitespace XML knows (S production): NBSP, U+3000 and the like are text to it.
XML_SPACE = " \t\r\n"


def xml_blank(s: str) -> bool:
    """Whether ``s`` is only XML whitespace (or empty): str.isspace() would also pass NBSP,
    U+3000 and other characters XML counts as text."""
    return not s.strip(XML_SPACE)


def trim(value: str) -> str:
    """``value.strip()``, unless that would drop a character XML cannot carry (str.strip
    takes \x0b, \x0c and \x1c-\x1f as whitespace): then ``value`` whole, so the check
    after refuses it rather than lose it without a word."""
    v = value.strip()
    if len(v) != len(value) and not value.isprintable() and bad_xml_char(value) is not None:
        return value
    return v


def describe_bad_char(s: str, c: str) -> str:
    return f"contains U+{ord(c):04X} at position {s.index(c)}, which XML cannot carry"


#: Error messages show at most this much of a value's repr.
SHOWN_MAX = 200


def shown(value: object) -> str:
    """``repr(value)`` for an error message, bounded: never raises, never huge.

    ``repr`` of an int over 4300 digits raises ValueError (and of a deeply nested list,
    RecursionError); a 100 KB string would fill the message. Those are summarised instead.
    """
    if isinstance(value, int) and value.bit_length() > 640:  # over ~190 digits
        digits = int(value.bit_length() * 0.30103) + 1
        return f"<an integer of about {digits} digits>"
    try:
        r = repr(value)
    except Exception:  # a repr that fails (huge int inside, recursion...): say what it is
        return f"<a {type(value).__name__} that cannot be shown>"
    if len(r) > SHOWN_MAX:
        # A string's own length, not its repr's (quotes and escapes): a limit in the same
        # message counts the string ("10001 characters in all" for a 9,999-character value).
        size = len(value) if isinstance(value, str) else len(r)
        r = f"{r[: SHOWN_MAX - 40]}... ({size} characters in all)"
    return r


# --- escaping ---------------------------------------------------------------------------------
# Each replace is guarded by a cheap membership test: most values need no escaping at all.


def _esc_markup(s: str) -> str:
    """The three characters every context escapes."""
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    return s


def esc_text(s: str) -> str:
    """Escape text content. ``\r`` becomes ``&#13;`` so parsers do not normalise it away."""
    s = _esc_markup(s)
    if "\r" in s:
        s = s.replace("\r", "&#13;")
    return s


def esc_url(s: str) -> str:
    """Escape a checked URL: it holds no whitespace, so only the quote joins the three."""
    s = _esc_markup(s)
    if '"' in s:
        s = s.replace('"', "&quot;")
    return s


def esc_attr(s: str) -> str:
    """Escape an attribute value; whitespace escapes survive attribute-value normalisation."""
    s = esc_url(s)
    if "\n" in s:
        s = s.replace("\n", "&#10;")
    if "\r" in s:
        s = s.replace("\r", "&#13;")
    if "\t" in s:
        s = s.replace("\t", "&#9;")
    return s


def unescape(s: str) -> str:
    """The inverse of the escapers above (and only of them: what this library wrote)."""
    if "&" not in s:
        return s
    if "&lt;" in s:
        s = s.replace("&lt;", "<")
    if "&gt;" in s:
        s = s.replace("&gt;", ">")
    if "&quot;" in s:
        s = s.replace("&quot;", '"')
    if "&#" in s:  # the whitespace escapes of attribute values, and \r in text
        s = s.replace("&#10;", "\n").replace("&#13;", "\r").replace("&#9;", "\t")
    return s.replace("&amp;", "&")  # last: "&amp;lt;" is "&lt;" as written


# --- memoised checks --------------------------------------------------------------------------

# A memo keeps the first values it sees, up to MEMO_LIMIT, and then stops growing: a flow's
# constant URLs and prompts show up in its first calls and stay, while the per-call values
# that come after (a URL with the call's id) are checked every time, at no memo cost, and
# never evict them. A value first seen once a memo is full is checked every time: correct,
# only slower.
MEMO_LIMIT = 256  # entries per attribute (or text spec)
MEMO_MAX_LEN = 512  # longer strings are checked every time, never kept


def remember(cache: dict[str, _V], key: str, value: _V, limit: int = MEMO_LIMIT) -> _V:
    """Store a memoised result, while there is room (see above); return it."""
    if len(cache) < limit and len(key) <= MEMO_MAX_LEN:
        cache[key] = value
    return value


#: A start tag longer than this (long hints, many long URLs) is rendered every time. A memo
#: key holds the values as given (before trimming), so each is bounded by MEMO_MAX_LEN too.
TAG_MAX_LEN = 2 * MEMO_MAX_LEN


# --- URLs ----------------------------------------------------------------------------------------


class Fails(Protocol):
    """Anything that raises the ElementError naming its element (attributes, text specs)."""

    def fail(self, value: object, allowed: str | None = None) -> NoReturn: ...


# Printable ASCII without space, '"', '<', '>', '{', '}'. A URL made only of these needs no
# check beyond the scheme and the host, and no escaping beyond '&'. A host of the fast path
# is made of the same characters without '/', '?', '#' (they end the authority), '@' (a user
# name), ':' (a port), '[', ']' (an IPv6 literal) and '\\': such URLs take the full check.
_URL_CHARS = "!#-;=?-z|~"
_HOST_CHARS = "!$-.0-9;=A-Z^-z|~"


def fast_url(schemes: tuple[str, ...]) -> Callable[[str], object]:
    """The common case of an absolute URL in one regex: scheme, host, optional port of up
    to four digits (a longer one may be past 65535: the full check decides), then plain
    characters.

    Anything else (whitespace to trim, non-ASCII, markup characters, user names, errors) takes
    :func:`check_url`, which decides; this one only ever says yes to what it would accept.
    """
    alts = "|".join(schemes)
    return re.compile(
        rf"(?:{alts})://[{_HOST_CHARS}]+(?::[0-9]{{0,4}})?(?:[/?#][{_URL_CHARS}]*)?"
    ).fullmatch


_AUTHORITY = re.compile("[^/?#]*").match


def _host_port(authority: str) -> tuple[str, str]:
    """The host and port of ``user@host:port`` (an IPv6 literal keeps its brackets; after
    it, anything but ``:port`` is returned as a port no check accepts)."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]")
        if end <= 1:
            return "", ""
        rest = hostport[end + 1 :]
        return hostport[: end + 1], rest[1:] if rest.startswith(":") else rest + "?"
    host, _colon, port = hostport.partition(":")
    return host, port


def check_url(owner: Fails, value: str, schemes: tuple[str, ...]) -> str:
    """Trim and check an absolute URL; ``owner.fail`` raises naming the element."""
    v = trim(value)
    for scheme in schemes:
        if v.startswith(scheme):
            n = len(scheme)
            break
    else:
        owner.fail(value)
    # A URL holds no whitespace or control characters, and the host must be present: not
    # only the scheme (https://), a path (https:///x), a user name or a port (https://@:443).
    if " " in v or not v.isprintable():
        owner.fail(
            value,
            f"an absolute {' or '.join(s.rstrip(':/') for s in schemes)} URL with no spaces "
            "or control characters "
            "(percent-encode them: a space is %20; flow.url_for does so in query parameters)",
        )
    host, port = _host_port(v[n : _AUTHORITY(v, n).end()])  # type: ignore[union-attr]
    if not host:
        owner.fail(value, f"an absolute URL with a host after the scheme ({v[:n]}host/...)")
    if port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        owner.fail(value, "an absolute URL whose port, if any, is a number up to 65535")
    if "{{" in v or "}}" in v:
        # Vobiz does not expand templates (spec §1.0): fail now, not on a live call.
        owner.fail(value, "a URL without {{...}} placeholders (Vobiz never expands them)")
    return v


def names_this_machine(url: str) -> bool:
    """Whether ``url``'s host is this machine (``localhost``, a loopback address such as
    127.0.0.1 or ::1): a local test, where plain ``http://`` is expected and Vobiz's https
    rule is no advice. A name that merely starts like one (``127.evil.example``) is not."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed authority ("http://[x")
        return False
    if host.rstrip(".") == "localhost":  # "localhost." is the same name, fully qualified
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    # 0.0.0.0 (a server bound to every address, reached here) and ::ffff:127.0.0.1 too.
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or ip.is_unspecified or (mapped is not None and mapped.is_loopback)
