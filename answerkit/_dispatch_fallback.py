"""What a webhook answers when its handler gives no answer of its own, and the report of
why.

The handler failed, or the store was down before it could run: the answer is still one
Vobiz can use (the flow's fallback, the sound fallback on an audio URL, an empty document
to an action) or, for a status callback, a 503 that has Vobiz send it again, with its
signature readmitted for the retry. Every such failure is logged and told to the flow's
``on_error`` hook, neither of which may change the answer.

:class:`FallbackAnswers` is a base of :class:`~answerkit.dispatch.Dispatcher` (its methods
read the dispatcher's fields), kept apart so that the pipeline's own path reads on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from answerkit._deadline import loggable
from answerkit._dispatch_failures import _passes_through, describe, hint, log
from answerkit._dispatch_gate import SignatureGate
from answerkit._dispatch_webhook import (
    _ACTION_EVENTS,
    _EMPTY_DOCUMENT_REPLY,
    _RECORD_ACTION,
    _SEND_AGAIN_REPLY,
    _WAIT_SOUND,
    EMPTY_DOCUMENT,
    STATUS_EVENTS,
    Route,
    WebhookReply,
    _event_name,
)
from answerkit._readmit_later import RETRY_FOR, NoRetry, late_forgetting
from answerkit.errors import (
    ElementError,
    HandlerTimeout,
    StateError,
    StateValueError,
)
from answerkit.request import CallRequest
from answerkit.state import StateStore

ErrorHook = Callable[[BaseException, "CallRequest | None", str], None]

#: How many times Vobiz sends a status callback again after a non-200 (spec §2.12).
STATUS_RETRIES = 3

#: A 503 sent this soon after its webhook arrived forgets its signature in the webhook;
#: later, the store may be what took the time, and asked again it would take the 503 past
#: the 3 s Vobiz waits (busy_timeout is 2 s): the background forgets it.
FORGET_IN_WEBHOOK_WITHIN = 0.5


class _LateNow(Exception):
    """The webhook's time for forgetting ran out: the background does the rest, only the
    delete when the slot is ``claimed`` already (a second claim would spend another of the
    signature's STATUS_RETRIES)."""

    def __init__(self, message: str, *, claimed: bool = False) -> None:
        super().__init__(message)
        self.claimed = claimed


class FallbackAnswers:
    """The dispatcher's answers when its handler gives none, and its failure reports."""

    # Fields of the Dispatcher these methods belong to (answerkit/dispatch.py).
    flow_name: str
    store: Callable[[], StateStore]
    verifier: SignatureGate | None
    fallback: bytes
    on_error: ErrorHook | None
    sound_fallback: bytes

    def _store_down(
        self, route: Route, call: CallRequest | None, exc: StateError, what: str
    ) -> WebhookReply:
        """The answer when the store cannot be reached before the handler runs (the replay
        record, or opening it), so no handler runs. A status callback gets 503, so that
        Vobiz sends it again (spec §2.12) when the store may be back, its answer being no
        document; an action sent to a status-callback route, which is not sent again, an
        empty document; anything else its fallback. ``call`` is None when the body could
        not be read (then it is no status callback, unless the route takes only those)."""
        self._report(exc, call, route, what)
        return self._without_handler(route, call)

    def _without_handler(self, route: Route, call: CallRequest | None) -> WebhookReply:
        """The answer when the pipeline fails around the handler (the store, or anything
        unexpected): the one its event wants, as _store_down says."""
        event = _event_name(call) if call is not None else None
        if event == _WAIT_SOUND:
            return WebhookReply(200, self.sound_fallback)
        if route.status_callback:
            return _EMPTY_DOCUMENT_REPLY if event in _ACTION_EVENTS else _SEND_AGAIN_REPLY
        if event in STATUS_EVENTS:
            return _SEND_AGAIN_REPLY
        return WebhookReply(200, self._fallback_for(route, event))

    def _fallback_for(self, route: Route, event: str | None) -> bytes:
        """What a webhook answers when its handler cannot: the flow's fallback (an apology
        and Hangup by default), except where that would hurt the call. A sound URL may
        play only audio, and an apology with Hangup there would cut off a caller on hold
        (or an agent being connected); a Record's action (redirect=false by default, spec
        §1.2) must answer an empty document, or it interrupts the flow that moved on."""
        if route.sound or event == _WAIT_SOUND:
            return self.sound_fallback
        if event == _RECORD_ACTION:
            return EMPTY_DOCUMENT
        return self.fallback

    def _retry_later(
        self,
        exc: BaseException,
        call: CallRequest,
        route: Route,
        replay_keys: tuple[str, ...],
        started: float,
    ) -> WebhookReply:
        """A status callback to be sent again (its handler asked with RetryLater, or ran out
        of time, or the store failed): 503, which Vobiz retries up to 3 times (spec §2.12),
        with the signature forgotten so a retry carrying it again is not refused as a
        replay. The handler ran, so this delivery's record stands: forgotten in the webhook
        while it is young, else (or if that fails) in the background (_readmit_later)."""
        if replay_keys:
            young = time.monotonic() - started < FORGET_IN_WEBHOOK_WITHIN
            self._readmit_logged(route, replay_keys, now=young, later=True, arrived=started)
        log.warning(
            "flow %s route %s: asking Vobiz to send event %r again (call %s): %s",
            self.flow_name,
            route.name,
            str(call.event),
            loggable(call.call_uuid),
            describe(exc),
        )
        return WebhookReply(503, b"", "text/plain; charset=utf-8")

    def _readmit_logged(
        self,
        route: Route,
        replay_keys: tuple[str, ...],
        *,
        now: bool,
        later: bool,
        arrived: float,
    ) -> None:
        """:meth:`_readmit` for a 503: in the webhook (``now``) and, if that is not done or
        fails, in the background (``later``: only when this delivery's record stands, see
        _readmit_later); saying when it cannot be done."""
        if self.verifier is None:
            return
        window = self.verifier.replay_window
        claimed = False
        if now:
            try:
                # A budget only when the background can take over; else finished here.
                until = time.monotonic() + FORGET_IN_WEBHOOK_WITHIN if later else None
                readmitted = self._readmit(replay_keys, window, until)
            # Any error: a store of one's own may raise its client's (after the very
            # failure that brought the 503).
            except NoRetry as err:
                self._tell_readmitted(route, err)
                return
            except _LateNow as late:
                claimed = late.claimed
                log.warning(
                    "flow %s route %s: the signature is forgotten in the background (no "
                    "time left in the webhook)",
                    self.flow_name,
                    route.name,
                )
            except BaseException as err:  # CancelledError too: never out of the webhook
                if _passes_through(err):
                    raise
                log.warning(
                    "flow %s route %s: the signature could not be forgotten now (%s); %s",
                    self.flow_name,
                    route.name,
                    err,
                    "it is forgotten in the background once the store answers again, so "
                    "that Vobiz's retry is taken (one that comes first is refused, and sent "
                    "again)"
                    if later
                    else "a retry that carries it again will be refused as a replay",
                )
            else:
                self._tell_readmitted(route, readmitted)
                return
        if later:
            late_forgetting.add(
                self,
                (lambda: self._delete_claimed(replay_keys))
                if claimed
                else (lambda: self._readmit(replay_keys, window)),
                lambda outcome: self._tell_readmitted(route, outcome),
                # Not past the record's own expiry (it was written as the webhook arrived;
                # a margin for the store's clock): a retry taken after it records the
                # signature anew, and a forget then would erase that record.
                for_seconds=arrived + window * 0.9 - time.monotonic(),
            )

    def _tell_readmitted(self, route: Route, outcome: bool | BaseException) -> None:
        if isinstance(outcome, NoRetry):
            log.warning(
                "flow %s route %s: the signature may not have been forgotten (%s), so a "
                "retry that carries it again may be refused as a replay",
                self.flow_name,
                route.name,
                outcome,
            )
        elif isinstance(outcome, BaseException):
            log.warning(
                "flow %s route %s: the signature could not be forgotten in time (the store "
                "did not answer within %d s, or before the record's replay window ends), so "
                "a retry that carries it again will be refused as a replay: %s",
                self.flow_name,
                route.name,
                RETRY_FOR,
                outcome,
            )
        elif not outcome:
            log.warning(
                "flow %s route %s: this signature was sent again %d times already; "
                "another copy is refused as a replay",
                self.flow_name,
                route.name,
                STATUS_RETRIES,
            )

    def _readmit(
        self, replay_keys: tuple[str, ...], window: float, until: float | None = None
    ) -> bool:
        """Forget the request's signature for its next delivery, at most STATUS_RETRIES
        times (as many as Vobiz retries): a captured copy cannot drive the handler again
        and again. False once they are used up. ``until`` (time.monotonic()): no store call
        is begun after it (_LateNow: the rest is for the background)."""
        store = self.store()
        for n in range(1, STATUS_RETRIES + 1):
            if until is not None and time.monotonic() > until:
                raise _LateNow("no time left in the webhook")
            if store.remember_all([f"{key}:retry{n}" for key in replay_keys], window):
                if until is not None and time.monotonic() > until:
                    # The delete is left to the background, which claims no other slot.
                    raise _LateNow("no time left in the webhook", claimed=True)
                self._delete_claimed(replay_keys, store)
                return True
        return False

    def _delete_claimed(
        self, replay_keys: tuple[str, ...], store: StateStore | None = None
    ) -> bool:
        """The delete of a claimed readmission: never tried again once it may have taken
        effect (see NoRetry)."""
        store = store or self.store()  # failing here, nothing was deleted: tried again
        try:
            store.forget_all(replay_keys)
        # BaseException too: a store on an async client raises CancelledError.
        except BaseException as exc:
            if _passes_through(exc):
                raise
            # The delete may have taken effect (a reply lost): done again after Vobiz's
            # retry was taken, it would erase that retry's record and let a replay
            # through. Not tried again.
            raise NoRetry(f"the store failed while forgetting it: {exc}") from exc
        return True

    def _report(
        self, exc: BaseException, call: CallRequest | None, route: Route, what: str
    ) -> None:
        """Log a failure and tell the on_error hook. Neither may change the answer: a log
        handler that raises (a log shipper down) or a hook that does turned the fallback
        into a 500, or a dropped connection."""
        log.error(
            "flow %s route %s call %s event %s: %s: %s: %s%s",
            self.flow_name,
            route.name,
            loggable(call.call_uuid) if call else "-",
            loggable(_event_name(call)) if call else "-",
            what,
            type(exc).__name__,
            describe(exc),
            hint(exc),
            # The traceback shows where a handler wrote what the state cannot keep.
            exc_info=isinstance(exc, StateValueError)
            or not isinstance(exc, (HandlerTimeout, StateError, ElementError)),
        )
        if self.on_error is not None:
            try:
                self.on_error(exc, call, route.name)
            except BaseException as err:
                if _passes_through(err):
                    raise
                log.exception("flow %s: the on_error hook itself failed", self.flow_name)
