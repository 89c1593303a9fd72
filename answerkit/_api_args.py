"""The REST API's arguments, checked as Vobiz would check them, and the request bodies
built from them (spec §4).

Everything here runs before a request is sent: a refused argument raises
:class:`~answerkit.errors.ArgumentError` (:class:`~answerkit.errors.TransferArgumentError`
for a transfer) naming the field, and nothing reaches Vobiz.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from answerkit import errors
from answerkit._tables import e164_advice

LEGS = ("aleg", "bleg", "both")
METHODS = ("GET", "POST")

# Unreserved URL characters only: the value becomes a path segment, and "/", "?",
# "#", "%" or ".." there would silently address another resource.
PATH_SEGMENT = re.compile(r"(?!\.{1,2}\Z)[A-Za-z0-9._~-]{1,128}")  # used with fullmatch
_SIP_HEADER_PART = re.compile(r"[A-Za-z0-9]+")  # used with fullmatch
#: A make-call number: E.164 digits, with or without the '+' (spec §4.4 examples use both),
#: or a national number with its trunk 0, as Vobiz itself sends some (spec §2, "07971...").
_PHONE = re.compile(r"\+?[1-9][0-9]{6,14}|0[1-9][0-9]{5,14}")
#: send_digits: keys, w/W pauses (0.5 s, 1 s) and an optional @duration in ms (spec §4.4).
_SEND_DIGITS = re.compile(r"[0-9A-Da-d*#wW]+(?:@[0-9]{1,5})?")
#: The body fields make_call's named arguments set, by the argument's name: ``extra`` must
#: not set them too, or it would bypass their checks (and silently win over the argument).
_MAKE_CALL_FIELDS = {
    "from": "from_",
    "to": "to",
    "caller_name": "caller_name",
    "time_limit": "time_limit",
    "ring_timeout": "ring_timeout",
    "hangup_on_ring": "hangup_on_ring",
    "send_digits": "send_digits",
    "sip_headers": "sip_headers",
    "machine_detection": "machine_detection",
    **{
        f"{hook}_{part}": f"{hook}_{part}"
        for hook in ("answer", "hangup", "ring", "fallback", "machine_detection")
        for part in ("url", "method")
    },
}


def _refuse(message: str, field_name: str, *, transfer: bool) -> errors.ArgumentError:
    """The error for an argument refused before sending; the message names the field."""
    if transfer:
        return errors.TransferArgumentError(message, field=field_name)
    return errors.ArgumentError(message, field=field_name)


def check_call_uuid(call_uuid: str, *, transfer: bool = False) -> None:
    """Refuse anything but a CallUUID that is safe as one path segment."""
    if isinstance(call_uuid, str) and PATH_SEGMENT.fullmatch(call_uuid):
        return
    raise _refuse(
        "call_uuid must be the CallUUID of a live call (letters, digits, '-', '_', '.', '~'), "
        f"got {call_uuid!r}",
        "call_uuid",
        transfer=transfer,
    )


def check_url(url: str | None, name: str, *, allow_http: bool, transfer: bool) -> str:
    """``url`` if Vobiz can fetch it: absolute https (http with ``allow_http``), nothing
    invisible in it."""
    allowed = ("https", "http") if allow_http else ("https",)
    problem = None
    if not isinstance(url, str) or not url:
        problem = "is required"
    elif any(c == " " or not c.isprintable() for c in url):
        # Unicode spaces (a pasted NBSP), controls and invisible format characters
        # too: Vobiz fetches the URL later, and a URL it cannot fetch drops the leg
        # (7013/7023) with no error here.
        problem = "contains whitespace, control or invisible characters; percent-encode them"
    elif "\\" in url:
        # Fetchers disagree about it: some read it as "/", which moves the host (the flow's
        # own transfer URLs refuse it for the same reason).
        problem = "contains a backslash, which URL parsers read differently; write it as %5C"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:  # a bad port, an unclosed [IPv6 bracket
            problem = f"is malformed ({exc})"
        if problem is None and (parts.scheme.lower() not in allowed or not parts.hostname):
            problem = "must be an absolute https:// URL Vobiz can reach" + (
                ""
                if allow_http
                else " (http only with allow_http=True on the client, for local testing)"
            )
    if problem is None:
        assert isinstance(url, str)
        return url
    raise _refuse(f"{name} {problem}, got {url!r}", name, transfer=transfer)


def check_method(method: str, name: str, *, transfer: bool) -> str:
    """``method`` upper-cased, if it is GET or POST."""
    if isinstance(method, str) and method.upper() in METHODS:
        return method.upper()
    raise _refuse(f"{name} must be 'GET' or 'POST', got {method!r}", name, transfer=transfer)


def transfer_body(
    legs: str | None,
    aleg: tuple[str | None, str],
    bleg: tuple[str | None, str],
    *,
    allow_http: bool,
) -> dict[str, str]:
    """The Transfer API's JSON body; ``aleg`` and ``bleg`` are (url, method) pairs.

    ``legs`` is derived from the URLs when None. A leg named needs its URL, and a URL for
    a leg not named is refused: Vobiz would ignore it silently.
    """
    aleg_url, bleg_url = aleg[0], bleg[0]
    if legs is None:
        if aleg_url is not None and bleg_url is not None:
            legs = "both"
        elif aleg_url is not None:
            legs = "aleg"
        elif bleg_url is not None:
            legs = "bleg"
        else:
            raise errors.TransferArgumentError(
                "no transfer URL: pass aleg_url= to move the caller (A-leg), bleg_url= for "
                "the callee (B-leg), or both",
                field="aleg_url",
            )
    if not isinstance(legs, str) or legs.lower() not in LEGS:
        raise errors.TransferArgumentError(
            f"legs must be 'aleg', 'bleg' or 'both', got {legs!r}", field="legs"
        )
    legs = legs.lower()
    body = {"legs": legs}
    given = {"aleg": aleg, "bleg": bleg}
    named = ("aleg", "bleg") if legs == "both" else (legs,)
    for leg in named:
        if given[leg][0] is None:
            raise errors.TransferArgumentError(
                f"legs={legs!r} needs {leg}_url: pass the URL that returns the new XML for "
                f"the {'caller (A-leg)' if leg == 'aleg' else 'callee (B-leg)'}",
                field=f"{leg}_url",
            )
    for leg, (url, _method) in given.items():
        if leg not in named and url is not None:
            raise errors.TransferArgumentError(
                f"{leg}_url is given but legs={legs!r} does not move that leg, so Vobiz "
                f"would ignore it: use legs='both' or drop {leg}_url",
                field=f"{leg}_url",
            )
    for leg in named:
        url, method = given[leg]
        body[f"{leg}_url"] = check_url(url, f"{leg}_url", allow_http=allow_http, transfer=True)
        body[f"{leg}_method"] = check_method(method, f"{leg}_method", transfer=True)
    return body


MAX_DESTINATIONS = 1000


def make_call_body(
    from_: str,
    to: str,
    hooks: Mapping[str, tuple[str | None, str]],
    *,
    caller_name: str | None,
    numbers: Mapping[str, int | None],
    send_digits: str | None,
    sip_headers: Mapping[str, str] | str | None,
    machine_detection: bool | Literal["true", "hangup"] | None,
    extra: Mapping[str, Any] | None,
    allow_http: bool,
) -> dict[str, Any]:
    """The make-call JSON body. ``hooks`` maps ``answer``, ``hangup``... to (url, method)
    (the answer URL is required, the others are left out when None); ``numbers`` maps
    ``time_limit``, ``ring_timeout`` and ``hangup_on_ring`` to whole numbers > 0 or None."""
    for name, value, what in (
        ("from_", from_, "your Vobiz number to call from"),
        ("to", to, "the E.164 number or sip: URI to call"),
    ):
        if not isinstance(value, str) or not value:
            raise errors.ArgumentError(f"make_call needs {name}, {what}, got {value!r}", field=name)
    destinations = to.split("<")  # spec §4.4: "<" dials up to 1000 destinations at once
    if len(destinations) > MAX_DESTINATIONS or not all(d.strip() for d in destinations):
        raise errors.ArgumentError(
            f"make_call's to takes 1 to {MAX_DESTINATIONS} destinations separated by '<', "
            f"none empty; got {len(destinations)}",
            field="to",
        )
    from_ = check_phone("from_", from_)
    to = check_destinations("to", to)
    for key in extra or {}:
        if key in _MAKE_CALL_FIELDS:
            raise errors.ArgumentError(
                f"extra[{key!r}] is set by a named argument of make_call: pass "
                f"{_MAKE_CALL_FIELDS[key]}= instead, which is checked before sending",
                field="extra",
            )
    body: dict[str, Any] = {"from": from_, "to": to}
    for name, (url, method) in hooks.items():
        if url is None and name != "answer":
            continue
        body[f"{name}_url"] = check_url(url, f"{name}_url", allow_http=allow_http, transfer=False)
        body[f"{name}_method"] = check_method(method, f"{name}_method", transfer=False)
    if caller_name is not None:
        if not isinstance(caller_name, str) or len(caller_name) > 50:
            raise errors.ArgumentError(
                f"caller_name must be text of 50 characters or fewer, got {caller_name!r}",
                field="caller_name",
            )
        body["caller_name"] = caller_name
    for key, number in numbers.items():
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
                raise errors.ArgumentError(
                    f"{key} must be a whole number > 0, got {number!r}", field=key
                )
            body[key] = number
    if send_digits is not None:
        if not isinstance(send_digits, str) or not _SEND_DIGITS.fullmatch(send_digits):
            raise errors.ArgumentError(
                "send_digits must be keys (0-9, *, #, A-D) with w or W for a pause and an "
                f"optional @milliseconds, such as '1w2w3' or '1234@1000', got {send_digits!r}",
                field="send_digits",
            )
        body["send_digits"] = send_digits
    if sip_headers is not None:
        body["sip_headers"] = sip_headers_text(sip_headers)
    if machine_detection is not None and machine_detection is not False:
        # Identity for True: 1 == True, and Vobiz takes the words, not a number.
        if not (
            machine_detection is True
            or (isinstance(machine_detection, str) and machine_detection in ("true", "hangup"))
        ):
            raise errors.ArgumentError(
                f"machine_detection must be True, 'true' or 'hangup', got {machine_detection!r}",
                field="machine_detection",
            )
        body["machine_detection"] = "true" if machine_detection is True else machine_detection
    if extra:
        try:
            # NaN and infinities are no JSON: requests would send them as is (a body the
            # API cannot read), and an object json cannot write fails only when sending.
            json.dumps(dict(extra), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise errors.ArgumentError(
                f"extra must hold JSON values (text, numbers, booleans, lists, dicts): {exc}",
                field="extra",
            ) from None
        body.update(extra)
    return body


def check_destinations(name: str, to: str) -> str:
    """Make-call destinations (numbers or ``sip:`` URIs joined by ``<``), each trimmed;
    ArgumentError naming the one that is neither."""
    return "<".join(
        d.strip() if d.strip().lower().startswith("sip:") else check_phone(name, d)
        for d in to.split("<")
    )


def check_phone(name: str, number: object) -> str:
    """A make-call number, trimmed; ArgumentError naming the E.164 form when it is not
    one (the '+' may be left out, as Vobiz's own examples do)."""
    if isinstance(number, str) and _PHONE.fullmatch(number.strip()):
        return number.strip()
    hint = e164_advice(number) if isinstance(number, str) else ""
    raise errors.ArgumentError(
        f"{name} must be a phone number such as '+14155550100'"
        f"{' (or a sip: URI)' if name == 'to' else ''}, got {number!r}{hint}",
        field=name,
    )


def sip_headers_text(value: Mapping[str, str] | str) -> str:
    """Make-call ``sip_headers`` as Vobiz takes them: ``key=value`` pairs joined by commas."""
    if isinstance(value, str):
        for pair in value.split(","):
            key, eq, item = pair.partition("=")
            if not (eq and _SIP_HEADER_PART.fullmatch(key) and _SIP_HEADER_PART.fullmatch(item)):
                raise errors.ArgumentError(
                    f"sip_headers must be key=value pairs of letters and digits joined by "
                    f"',' (or a dict of them), got {value!r}",
                    field="sip_headers",
                )
        return value
    if not isinstance(value, Mapping):
        raise errors.ArgumentError(
            f"sip_headers must be a dict or 'key=value,key=value', got {value!r}",
            field="sip_headers",
        )
    pairs = []
    for key, item in value.items():
        if not (
            isinstance(key, str)
            and _SIP_HEADER_PART.fullmatch(key)
            and _SIP_HEADER_PART.fullmatch(str(item))
        ):
            raise errors.ArgumentError(
                f"sip_headers keys and values must be letters and digits, got {key!r}={item!r}",
                field="sip_headers",
            )
        pairs.append(f"{key}={item}")
    return ",".join(pairs)
