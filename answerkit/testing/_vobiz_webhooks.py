"""The webhooks LocalVobiz sends as Vobiz would: fields, signatures, and judging the reply.

A transfer URL's reply is judged as the platform does (spec §2.8): unreachable or
non-2xx drops the leg with cause 7013; a content type other than
``application/xml``/``text/xml``, more than 100 KB, or XML that answerkit's own
parser rejects drops it with 8013.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from datetime import datetime
from typing import Any

from requests import RequestException, Response, Session

from answerkit.client import refuse_cookies
from answerkit.testing._vobiz_records import (
    CAUSE_NAMES,
    LiveCallRecord,
    SentWebhook,
    TransferOutcome,
)

__all__ = ["MAX_XML_BYTES", "WebhookSender", "judge_transfer_reply", "webhook_params"]

MAX_XML_BYTES = 100_000
logger = logging.getLogger("answerkit.testing")


def _wire_number(number: str) -> str:
    # Vobiz sends E.164 without the "+" on webhooks (spec §2.0); sip: URIs unchanged.
    return number[1:] if number.startswith("+") else number


def webhook_params(record: LiveCallRecord, event: str, parent_auth_id: str) -> dict[str, str]:
    """The standard fields Vobiz sends with every webhook of a call (spec §2.1)."""
    params = {
        "Event": event,
        "CallUUID": record.call_uuid,
        "From": _wire_number(record.from_),
        "To": _wire_number(record.to),
        "Direction": record.direction,
        "CallStatus": record.status,
        "CallerName": record.caller_name or record.from_,
        "SessionStart": record.session_start,
        "STIRAttestation": "Not Applicable",
        "STIRVerification": "Not Applicable",
        "ParentAuthID": parent_auth_id,
        "BillRate": "0",
    }
    if record.direction == "outbound":
        request_uuid = record.request_uuid or record.call_uuid
        params.update(
            RequestUUID=request_uuid, ALegUUID=record.call_uuid, ALegRequestUUID=request_uuid
        )
    if event == "Hangup":
        code = record.hangup_cause_code or 4000
        params["TotalCost"] = "0.00000"  # spec §2.2, as the simulator's Hangup has it
        params.update(
            HangupCause=record.hangup_cause or CAUSE_NAMES[4000][0],
            HangupCauseCode=str(code),
            HangupCauseName=CAUSE_NAMES.get(code, ("", "Unknown"))[1],
            HangupSource=record.hangup_source or "Caller",
            **_hangup_times(record),
        )
    params.update(record.params)
    return params


#: Seconds before the first retry of a status callback; each later one waits twice as long.
RETRY_BACKOFF = 0.05


def _local_time(epoch: float) -> str:
    # Vobiz reports StartTime/AnswerTime/EndTime in the account's local time (spec §2.2).
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _hangup_times(record: LiveCallRecord) -> dict[str, str]:
    """Duration (answered seconds), BillDuration (up to the 60 s pulse) and the local
    StartTime/AnswerTime/EndTime of an ended call (spec §2.2), as the simulator sends them."""
    ended = record.ended_at or time.time()
    answered = record.answered_at
    duration = 0 if answered is None else max(0, round(ended - answered))
    return {
        "Duration": str(duration),
        "BillDuration": str(60 * math.ceil(duration / 60)),
        "StartTime": _local_time(record.started_at),
        "AnswerTime": "" if answered is None else _local_time(answered),
        "EndTime": _local_time(ended),
    }


class WebhookSender:
    """Sends signed webhooks on one pooled session and remembers what it sent."""

    def __init__(self, auth_token: str, parent_auth_token: str | None, timeout: float) -> None:
        self.auth_token = auth_token
        self.parent_auth_token = parent_auth_token
        self.timeout = timeout
        self.sent: list[SentWebhook] = []
        # Bumped by forget(): a webhook under way when LocalVobiz was reset (the previous
        # test's, in a thread) is neither recorded in the new log nor sent again.
        self.generation = 0
        self._lock = threading.Lock()
        # Vobiz keeps no cookies between webhooks (spec §1.0: the XML is stateless); an app
        # that relied on them would pass here and fail there.
        self._session = refuse_cookies(Session())

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def forget(self) -> None:
        """Clear the log of sent webhooks; those under way are kept out of the new one."""
        with self._lock:
            self.sent.clear()
            self.generation += 1

    def send(
        self, url: str, method: str, params: dict[str, str], generation: int | None = None
    ) -> tuple[Response | None, str | None]:
        """POST the fields as a form (or GET them as a query); returns (response, error).
        ``generation``: the log it belongs in (see :meth:`forget`), by default the current."""
        from answerkit.signature import sign

        if generation is None:
            generation = self.generation
        headers = {"User-Agent": "Vobiz"}
        headers.update(sign(url, self.auth_token, parent_auth_token=self.parent_auth_token))
        response: Response | None = None
        error: str | None = None
        try:
            response = self._session.request(
                method,
                url,
                params=params if method == "GET" else None,
                data=params if method != "GET" else None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        status = response.status_code if response is not None else None
        with self._lock:
            if generation == self.generation:
                self.sent.append(SentWebhook(params["Event"], url, method, params, status, error))
        logger.debug("webhook %s %s -> %s", params["Event"], url, status or error)
        return response, error

    def notify(
        self, url: str, method: str, params: dict[str, str], generation: int | None = None
    ) -> None:
        """A status callback: sent again while the answer is not 2xx, 3 times at most, with
        exponential backoff (spec §2.12; scaled down to RETRY_BACKOFF for tests), each
        retry signed afresh."""
        if generation is None:
            generation = self.generation
        for attempt in range(4):
            if attempt:
                time.sleep(RETRY_BACKOFF * 2 ** (attempt - 1))
            if self.generation != generation:
                return  # LocalVobiz was reset: its calls, and their (re)tries, forgotten
            response, _error = self.send(url, method, params, generation)
            if response is not None and 200 <= response.status_code < 300:
                return


def _parse_xml(data: bytes) -> Any:
    """answerkit's own VobizXML parser, wherever the elements module put it."""
    for module_name in ("answerkit.parse", "answerkit.elements"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        parse = getattr(module, "parse", None)
        if callable(parse):
            return parse(data)
    raise RuntimeError("answerkit has no VobizXML parser (answerkit.parse) to judge replies with")


def judge_transfer_reply(
    call_uuid: str,
    leg: str,
    url: str,
    method: str,
    response: Response | None,
    error: str | None,
) -> TransferOutcome:
    """Decide, as Vobiz would, whether the leg runs the reply or is dropped."""
    http_status = response.status_code if response is not None else None

    def dropped(code: int, why: str, xml: str | None = None) -> TransferOutcome:
        return TransferOutcome(
            call_uuid, leg, url, method, "dropped", code, http_status, xml, None, why
        )

    if response is None:
        return dropped(7013, f"could not reach the transfer URL: {error}")
    if not 200 <= response.status_code < 300:
        return dropped(7013, f"the transfer URL answered {response.status_code}")
    xml = response.content.decode("utf-8", "replace")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in ("application/xml", "text/xml"):
        return dropped(8013, f"content type {content_type!r} is not XML", xml)
    if len(response.content) > MAX_XML_BYTES:
        return dropped(8013, "the XML is over 100 KB", xml)
    try:
        document = _parse_xml(response.content)
    except ValueError as exc:  # ElementError and ParseError are ValueErrors
        return dropped(8013, f"invalid VobizXML: {exc}", xml)
    return TransferOutcome(
        call_uuid, leg, url, method, "executed", None, http_status, xml, document
    )
