"""Reading an HTTP answer from Vobiz, or from a gateway in front of it: the parsed body,
the request id, and the human message of an error body.

Vobiz's error bodies come in three shapes (spec §4.0), a 422 names its failing fields
apart from its message, and a proxy or gateway may answer with a web page. Nothing here
fails on a body, however odd: the caller always gets a typed error or result, with the
best message the body gives.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["Answer"]


@dataclass(frozen=True)
class Answer:
    """A 2xx (or, inside the loop, any) HTTP answer: status, parsed body, request id."""

    status: int
    body: Any  # parsed JSON, the text when it is not JSON, None when empty
    headers: Mapping[str, str]
    request_id: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _read(response: requests.Response) -> Answer:
    body: Any = None
    if response.content:
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):
            # Malformed JSON is kept as text: the caller gets a typed error or result,
            # never a JSONDecodeError.
            body = response.text
    request_id = None
    if isinstance(body, dict):
        error_part = body.get("error")
        request_id = (
            _text(body.get("requestId"))
            or _text(body.get("request_id"))
            or (_text(error_part.get("requestId")) if isinstance(error_part, dict) else None)
            or _text(body.get("api_id"))
        )
    request_id = request_id or response.headers.get("X-Request-ID")
    return Answer(response.status_code, body, response.headers, request_id)


_HTML = re.compile(r"<(!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE)
# Neither pattern can run past the next "<": a page of many "<" and no ">" costs one pass,
# where "<[^>]*>" rescanned the rest of the page from every "<".
_HTML_TITLE = re.compile(r"<title[^<>]*>([^<]*)<", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^<>]*>")
#: Characters of a text or HTML error body summed up in a message: a gateway's page says
#: what it is near its top, and a multi-megabyte body must not cost more than that.
SUMMARY_CHARS = 8192


def _no_such_route(body: Any) -> bool:
    """True for a 404 from in front of the API rather than from it: the gateway's own
    ``{"message": "Not Found"}`` (spec §4.0) or a web page; these mean the path is wrong.
    Any other body, even a bare ``{"message": "Call not found or already completed"}``,
    is the API saying the call is not live."""
    if isinstance(body, dict):
        message = body.get("message")
        return (
            set(body) == {"message"}
            and isinstance(message, str)
            and message.strip().lower() == "not found"
        )
    return isinstance(body, str) and bool(_HTML.search(body[:2000]))


def _api_message(body: Any) -> str | None:
    """The human message from any of the three error body shapes of spec §4.0, with the
    fields a validation error names; or the gist of a text or HTML error page."""
    if isinstance(body, dict):
        error_part = body.get("error")
        message = None
        if isinstance(error_part, dict):
            message = _text(error_part.get("message")) or _text(error_part.get("code"))
        message = (
            message or _text(error_part) or _text(body.get("message")) or _text(body.get("detail"))
        )
        named = _named_fields(body, message or "")
        if named:
            return f"{message} ({named})" if message else named
        return message
    if isinstance(body, str) and body.strip():
        text = body[:SUMMARY_CHARS]
        if _HTML.search(text[:2000]):
            # A proxy's or gateway's error page: its title says it ("502 Bad Gateway");
            # the first 200 characters of markup would say nothing.
            title = _HTML_TITLE.search(text)
            text = html.unescape(title.group(1) if title else _HTML_TAG.sub(" ", text))
        text = " ".join(text.split())
        return text[:200] + ("…" if len(text) > 200 else "")
    return None


def _named_fields(body: Mapping[str, Any], message: str) -> str | None:
    """What ``details.field`` and ``details.errors[]`` add to ``message`` (422 bodies name
    the failing fields only there, under a generic "Validation failed"), or None."""
    error_part = body.get("error")
    details = (error_part if isinstance(error_part, dict) else body).get("details")
    if not isinstance(details, dict):
        return None
    said: list[str] = []
    field_name = _text(details.get("field"))
    if field_name and field_name not in message:
        said.append(f"field {field_name}")
    items = details.get("errors")
    for item in items[:5] if isinstance(items, list) else ():
        if isinstance(item, dict):
            name = next((v for k in ("field", "param", "path") if (v := _text(item.get(k)))), None)
            text = next((v for k in ("message", "msg", "code") if (v := _text(item.get(k)))), None)
            part = ": ".join(p for p in (name, text) if p)
        else:
            part = _text(item) or ""
        if part and part not in message:
            said.append(part)
    text = "; ".join(said)
    return (text[:300] + ("…" if len(text) > 300 else "")) or None
