"""The framework-neutral webhook pipeline: verify, parse, run the handler, answer.

Vobiz drops the caller when a webhook answers with an error status or invalid XML,
so every path through :meth:`Dispatcher.handle` ends in a 200 with a valid document
(or an empty 200 for status callbacks), except the two answers that protect the
application, 403 for a request that is not from Vobiz and 400 for one that is not a
call callback at all, and an empty 503 to a status callback that Vobiz should send again
(its handler raised RetryLater, ran past ``status_deadline`` or met the store down):
Vobiz ignores a status callback's answer but retries it on a non-200 (spec §2.12).

This module is the pipeline's path, and the public home of its names; the parts it is
built of live apart: the webhook, its route and the answer each event wants
(answerkit/_dispatch_webhook.py), the signature and replay check
(answerkit/_dispatch_gate.py), the answers when the handler gives none
(answerkit/_dispatch_fallback.py), and how a failure is told
(answerkit/_dispatch_failures.py).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

from answerkit._deadline import (
    DeadlineRunner,
    Handler,
    HandlerState,
    LateTransferRefused,
    handler_given_up,
    loggable,
)
from answerkit._dispatch_failures import _passes_through
from answerkit._dispatch_failures import log as log
from answerkit._dispatch_fallback import FORGET_IN_WEBHOOK_WITHIN, FallbackAnswers
from answerkit._dispatch_fallback import ErrorHook as ErrorHook
from answerkit._dispatch_gate import SignatureGate as SignatureGate
from answerkit._dispatch_webhook import (
    _ACTION_EVENTS,
    _HANGUP,
    _WAIT_SOUND,
    EMPTY_DOCUMENT,
    UnreadableBody,
    _event_name,
    _status_reply,
)
from answerkit._dispatch_webhook import STATUS_EVENTS as STATUS_EVENTS
from answerkit._dispatch_webhook import Route as Route
from answerkit._dispatch_webhook import WebhookReply as WebhookReply
from answerkit._dispatch_webhook import WebhookRequest as WebhookRequest
from answerkit._dispatch_webhook import dropped_callback_note as dropped_callback_note
from answerkit._expiry_thread import expiries
from answerkit._plivo_habits import foreign_result_hint
from answerkit._sound import not_sound, not_sound_message
from answerkit.elements import Element, Response
from answerkit.errors import ElementError, HandlerTimeout, RetryLater, StateError, StateValueError
from answerkit.request import CallRequest, Event, MissingCallUUID
from answerkit.signature import header_value
from answerkit.state import NoCallState, StateStore

__all__ = [
    "STATUS_EVENTS",
    "DeadlineRunner",
    "Dispatcher",
    "ErrorHook",
    "Handler",
    "HandlerTimeout",
    "LateTransferRefused",
    "Route",
    "SignatureGate",
    "WebhookReply",
    "WebhookRequest",
    "dropped_callback_note",
    "handler_given_up",
    "loggable",
]

_STARTS = frozenset({Event.StartApp.value, Event.Transfer.value})


class _Seen:
    """What the pipeline has learnt of a webhook so far, for its last resort: whether its
    signature passed (then its body may be read) and whether the body was read already,
    the call once read (to answer for its event, and name it), the replay keys once asked
    to be recorded (to forget them when the answer asks Vobiz to send it again)."""

    __slots__ = (
        "call", "may_readmit", "read_tried", "recorded", "replay_keys", "signed", "started",
    )  # fmt: skip

    def __init__(self) -> None:
        self.signed = False
        self.read_tried = False
        self.may_readmit = True  # False after a replay record that failed slowly
        self.recorded = False  # this delivery's replay record was written
        self.started = time.monotonic()
        self.call: CallRequest | None = None
        self.replay_keys: tuple[str, ...] = ()


def _never_ran(result: object) -> None:
    """Raise if a status handler's result says its body never ran: it was a generator or
    coroutine function (wrapped by a decorator, so not refused when declared). Its answer
    is no document either way, so nothing else would ever tell."""
    if inspect.isgenerator(result) or inspect.iscoroutine(result) or inspect.isasyncgen(result):
        if not inspect.isasyncgen(result):
            result.close()  # no "never awaited" warning: the error below says it
        raise TypeError(
            f"the handler returned a {type(result).__name__}: its body never ran (a "
            "function that yields, or an async def, behind a decorator); return instead"
        )


#: Seconds within which a failed replay record must have failed for its keys to be
#: forgotten on the 503 (see Dispatcher._handle).
READMIT_AFTER_FAILING_WITHIN = 0.25

#: Hangups a route takes with no other event before it is told of (see Dispatcher).
HANGUPS_BEFORE_TELLING = 5


def _read_call(req: WebhookRequest) -> CallRequest | None:
    """The request's call for a log line and its Event (a signed request's body only), or
    None when it has none to read; UnreadableBody when the body could not be read whole
    (answered with its own status, never as some event)."""
    try:
        return CallRequest.from_params(req.read_params())
    except UnreadableBody:
        raise
    except Exception:
        return None


@dataclass
class Dispatcher(FallbackAnswers):
    """Turns one webhook into one reply, never a 500."""

    flow_name: str
    store: Callable[[], StateStore]
    verifier: SignatureGate | None
    fallback: bytes
    deadline: DeadlineRunner
    on_error: ErrorHook | None = None
    #: Seconds the call's state outlives its Hangup webhook (0: cleared at once).
    hangup_linger: float = 0.0
    #: What a sound route (or a waitSound fetch) answers when its handler cannot.
    sound_fallback: bytes = EMPTY_DOCUMENT
    #: The flow's public URL, which url_for builds on (see _check_script_root).
    public_url: str | None = None
    #: Run on every Hangup webhook before the route's handler (CallFlow.add_hangup_listener).
    hangup_listeners: tuple[Callable[[CallRequest], None], ...] = ()
    #: (route, event) pairs already warned about (see _tell_once).
    _told: set[tuple[str, str]] = field(default_factory=set, repr=False)
    #: Routes that took an event other than Hangup in this process, and the Hangups the
    #: others took (see _respond).
    _took_calls: set[str] = field(default_factory=set, repr=False)
    _hangups_only: dict[str, int] = field(default_factory=dict, repr=False)
    #: Whether the server this process runs under was looked at (_dispatch_server).
    server_seen: bool = field(default=False, repr=False)

    def _tell_once(self, route: Route, event: str, what: str) -> None:
        """Log a warning about ``route`` once per event: a flow's mistake that would
        otherwise be logged on every call."""
        if (route.name, event) not in self._told:
            self._told.add((route.name, event))
            log.warning(
                "flow %s route %s: %s (logged once per route and event)",
                self.flow_name,
                route.name,
                what,
            )

    def _check_script_root(self, route: Route, script_root: str) -> None:
        """Warn (once per route) when the app is served under a prefix (SCRIPT_NAME) that
        the public URL lacks: the signature check takes both readings, but every URL
        url_for builds (actions, transfers) would leave the prefix out."""
        prefix = script_root.rstrip("/")
        if not prefix or not self.public_url:
            return
        if urlsplit(self.public_url).path.rstrip("/").endswith(prefix):
            return
        prefix = loggable(prefix)  # it may come from a request header
        self._tell_once(
            route,
            "SCRIPT_NAME",
            f"the app is served under {prefix} (SCRIPT_NAME), which public_url "
            f"{self.public_url!r} lacks: the URLs flow.url_for builds leave it out, so "
            f"Vobiz is sent where the app is not; put {prefix} at the end of public_url",
        )

    def handle(self, route: Route, req: WebhookRequest) -> WebhookReply:
        """Answer one webhook for ``route``."""
        seen = _Seen()
        try:
            return self._handle(route, req, seen)
        except BaseException as exc:  # the last line of defence: never answer 500
            if _passes_through(exc):
                raise
            call = seen.call
            if call is None and seen.signed and not seen.read_tried:
                # Failed before the body was read (a store raising its own error at the
                # replay record, say): read now, so the answer is the one its event wants
                # (a Hangup's 503, not the apology) and the log names the call.
                try:
                    call = _read_call(req)
                except UnreadableBody as bad:
                    self._report(exc, None, route, "unexpected error in the webhook pipeline")
                    return self._unreadable(route, bad, seen)
            self._report(exc, call, route, "unexpected error in the webhook pipeline")
            reply = self._without_handler(route, call)
            if reply.status == 503:
                # Sent again, it must not be refused as a replay of itself.
                self._forget_for_retry(route, seen)
            return reply

    def _forget_for_retry(self, route: Route, seen: _Seen) -> None:
        """Forget the signature of a delivery answered 503 (or refused for a body it could
        not read), so Vobiz's retry is taken: in the webhook while it is young and its
        record did not stall; in the background only if its record was written (one that
        may never have been could be written by a retry taken first, and a late forget
        would erase it: a replay let through)."""
        if not seen.replay_keys:
            return
        young = time.monotonic() - seen.started < FORGET_IN_WEBHOOK_WITHIN
        self._readmit_logged(
            route,
            seen.replay_keys,
            now=young and seen.may_readmit,
            later=seen.recorded,
            arrived=seen.started,
        )

    def _unreadable(self, route: Route, exc: UnreadableBody, seen: _Seen) -> WebhookReply:
        """A body that could not be read whole: refused with its status, never run on part
        of its fields nor answered as if it were some event (a Hangup given the apology and
        200 would never be sent again), its signature forgotten for the retry."""
        why = f"{exc} (event unknown: the webhook is refused, and its retry taken)"
        log.warning("flow %s route %s: %s", self.flow_name, route.name, why)
        self._forget_for_retry(route, seen)
        return WebhookReply(exc.status, f"{why}\n".encode(), "text/plain; charset=utf-8")

    def _handle(self, route: Route, req: WebhookRequest, seen: _Seen) -> WebhookReply:
        # Status callbacks have one deadline for the whole webhook (Vobiz waits 3 s for an
        # answer, spec §2.12): the replay record, the hangup listeners and the handler
        # share it.
        started = seen.started
        gate = self.verifier
        replay_keys: tuple[str, ...] = ()
        seen.signed = gate is None  # verify=False: every request counts as signed
        if gate is not None:
            refused, replay_keys, url = gate.check(req)
            if refused is not None:
                return self._refuse(route, refused)
            seen.signed = True
            # Recorded before anything else happens, so a signature is spent even by a
            # request refused below (no CallUUID, a body that fails to read): the body is
            # not signed, and the same headers must not come back with another one.
            # Known to the last resort before the store is asked: a store that wrote the
            # record and then failed (its reply lost) would refuse the very retry its
            # 503 asks for.
            seen.replay_keys = replay_keys if route.replay_check else ()
            asked = time.monotonic()
            try:
                fresh = (
                    self.store().remember_all(replay_keys, gate.replay_window)
                    if route.replay_check
                    else True
                )
            except BaseException as exc:
                # The record may be written though the answer was lost (a reply lost on its
                # way back): forgotten for the retry a 503 asks for, but only after a quick
                # failure. A store that stalled would stall again, and the 503 must reach
                # Vobiz within its 3 s (forgetting makes up to four more store calls).
                seen.may_readmit = time.monotonic() - asked < READMIT_AFTER_FAILING_WITHIN
                if not isinstance(exc, StateError):
                    raise  # the store's own error: the last resort answers (see handle)
                seen.read_tried = True
                try:
                    call = _read_call(req)
                except UnreadableBody as bad:
                    return self._unreadable(route, bad, seen)
                reply = self._store_down(
                    route, call, exc, "replay check failed: state store failed"
                )
                if reply.status == 503:
                    self._forget_for_retry(route, seen)
                return reply
            if not fresh:
                seen.replay_keys = ()  # another request's record: never to be forgotten here
                return self._refuse(route, f"replayed signature for {loggable(url)}")
            seen.recorded = route.replay_check
        if req.script_root:
            # After the signature: SCRIPT_NAME may come from a request header (gunicorn
            # takes one from a local proxy), and an unsigned request must leave no trace.
            self._check_script_root(route, req.script_root)
        # Only a signed request's body is read, and once (a stalled body is not waited for
        # twice, by the last resort too).
        seen.read_tried = True
        try:
            call = CallRequest.from_params(
                req.read_params(), method=req.method, query=req.query, path=req.path
            )
        except UnreadableBody as exc:
            # Its signature was recorded: forgotten, so the retry a non-200 brings (with the
            # whole body, this time) is not refused as a replay.
            return self._unreadable(route, exc, seen)
        except MissingCallUUID as exc:
            why = str(exc)
            content_type = (header_value(req.headers, "Content-Type") or "").lower()
            if req.method == "POST" and "form" not in content_type:
                # A JSON body (a hand-made test request, another platform's callback): its
                # CallUUID is there, but Vobiz posts form fields and only those are read.
                why += (
                    f" The body is {content_type or 'of no declared type'}: Vobiz posts form "
                    "fields (application/x-www-form-urlencoded), the only body read."
                )
            log.warning("flow %s route %s: %s", self.flow_name, route.name, why)
            return WebhookReply(400, f"{why}\n".encode(), "text/plain; charset=utf-8")
        seen.call = call
        if call.call_uuid:
            try:
                store = self.store()
            except StateError as exc:  # it could not be opened (with no replay check first)
                return self._store_down(route, call, exc, "state store failed")
            call._attach_state(HandlerState(store, call.call_uuid))
        else:  # a transcription carries none: its state is its own, and kept nowhere
            call._attach_state(
                NoCallState(
                    lambda: self._tell_once(
                        route,
                        "",
                        "its handler wrote to call.state on a webhook with no CallUUID (a "
                        "Record's transcription callback, spec §2.6): the write lasts for "
                        "this webhook only; keep what it brings under its recording with "
                        "flow.store (call.recording_id; the RecordStop webhook carries both "
                        "RecordingID and CallUUID, to link the two)",
                    )
                )
            )
        event = _event_name(call)
        # A waitSound fetch wants its audio even on a status-callback route (a Conference's
        # callbackUrl may also be its waitSound).
        status_event = (route.status_callback and event != _WAIT_SOUND) or event in STATUS_EVENTS
        if not route.replay_check and event in STATUS_EVENTS:
            # Its signature was not recorded, so it may be one captured from any earlier
            # fetch of this route (hold music is fetched again and again), sent with a
            # body of the sender's choosing: a Hangup here must not run the hangup
            # listeners or end the state of whatever call it names.
            self._tell_once(
                route,
                event,
                f"a {event} webhook reached this replay_check=False route and was answered "
                "without being acted on (no hangup listener, no state ended): a route that "
                "records no signature cannot tell it from a replay. Point the application's "
                "hangup_url (or the callback) at a route that records signatures",
            )
            return _status_reply(event)
        reply = self._respond(route, call, event, status_event, replay_keys, started)
        if event == _HANGUP and reply.status != 503:  # a 503: the retry needs the state
            failure = self._forget(call, route, started)
            if failure is not None:
                # Answered 200, the state would outlive the call for the whole TTL (and a
                # short outage must not lose a Hangup): sent again, it may find the store
                # back. The handler runs again then; Vobiz's retries ask the same of it.
                return self._retry_later(failure, call, route, replay_keys, started)
        return reply

    def _respond(
        self,
        route: Route,
        call: CallRequest,
        event: str,
        status_event: bool,
        replay_keys: tuple[str, ...],
        started: float,
    ) -> WebhookReply:
        """The handler's answer to the webhook (the hangup listeners first, on a Hangup).
        ``started``: when the webhook arrived (time.monotonic()), which a status callback's
        deadline counts from."""
        # Vobiz sends a status callback again on a non-200 (spec §2.12); an action sent to
        # a status-callback route (a Record's, a Dial's) is not, and wants a document.
        retryable = status_event and event not in _ACTION_EVENTS
        handler = route.handler_for(event)
        if event != _HANGUP:
            self._took_calls.add(route.name)
        elif handler is None and None in route.handlers and route.name not in self._took_calls:
            # Only Hangups so far: maybe a hangup_url whose view was declared as an answer
            # route (ported from Plivo, say), whose handler never runs. An answer route
            # gets Hangups too (hangup_url defaults to answer_url), one worker may see a
            # call's Hangup and not its answer: told after several, and carefully.
            seen = self._hangups_only[route.name] = self._hangups_only.get(route.name, 0) + 1
            if seen == HANGUPS_BEFORE_TELLING:
                self._tell_once(
                    route,
                    "hangup-only",
                    f"{seen} Hangups and no other event reached this route in this process, "
                    "and its handler ran for none: a route's default handler answers a "
                    "call's other events, never its Hangup. If this URL is only a "
                    f"hangup_url, declare it with @flow.route({route.path!r}, "
                    "status_callback=True) or give it a handler with event=Event.Hangup; "
                    "an answer route (which gets Hangups too, as hangup_url defaults to "
                    "answer_url) must stay as it is",
                )
        try:
            if event == _HANGUP and self.hangup_listeners:
                self._tell_listeners(call, route, started)
            if handler is None:
                if not status_event:
                    log.warning(
                        "flow %s route %s: no handler for event %r (call %s); serving fallback",
                        self.flow_name,
                        route.name,
                        event,
                        loggable(call.call_uuid),
                    )
                    return WebhookReply(200, self._fallback_for(route, event))
                if route.drops(event):
                    self._tell_once(route, event, dropped_callback_note(route, event))
                return _status_reply(event)
            if status_event:
                result = self.deadline.run(handler, call, True, self._left(started))
            else:
                result = self.deadline.run(handler, call)
            if status_event:
                if result is not None:
                    _never_ran(result)
                return _status_reply(event)
            if (route.sound or event == _WAIT_SOUND) and isinstance(result, Response):
                wrong = not_sound(result)
                if wrong:
                    raise ElementError(not_sound_message(wrong))
            if result is None and event in _STARTS:
                # Allowed (an empty document), but on an answer or a transfer it is nearly
                # always a handler that built its Response and forgot to return it: the
                # caller is hung up. (An action URL may mean it: redirect=false wants one.)
                log.warning(
                    "flow %s route %s: the handler returned None on event %r (call %s): the "
                    "empty document ends the call (4010); return the Response, or "
                    "Response(Hangup()) to hang up on purpose",
                    self.flow_name,
                    route.name,
                    event,
                    loggable(call.call_uuid),
                )
            return WebhookReply(200, self._render(result))
        except BaseException as exc:
            if _passes_through(exc):
                raise
            if retryable and isinstance(exc, RetryLater):
                return self._retry_later(exc, call, route, replay_keys, started)
            self._report(exc, call, route, f"handler failed on event {event!r}")
            if (
                retryable
                and isinstance(exc, (HandlerTimeout, StateError))
                and not isinstance(exc, StateValueError)
            ):
                # Cut off at status_deadline (its work undone or unknown; Vobiz would have
                # retried a callback slower than its 3 s, spec §2.12), or the store failed
                # under it: sent again, it may find the store back. A value the state
                # cannot keep would fail the same way on every retry.
                return self._retry_later(exc, call, route, replay_keys, started)
            if status_event:
                return _status_reply(event)
            return WebhookReply(200, self._fallback_for(route, event))

    def _left(self, started: float) -> float | None:
        """What is left of a status callback's deadline (None: it has none)."""
        limit = self.deadline.status_seconds
        return None if not limit else limit - (time.monotonic() - started)

    def _tell_listeners(self, call: CallRequest, route: Route, started: float) -> None:
        """The hangup listeners, each within the deadline. One that could not finish (the
        store down, its deadline, RetryLater) has the Hangup answered 503, so that Vobiz
        sends it again and every listener, and then the route's handler, runs on it; any
        other failure (a bug) is reported and changes nothing else."""
        for listener in self.hangup_listeners:
            try:
                self.deadline.run(listener, call, True, self._left(started))
            except BaseException as exc:
                if _passes_through(exc) or isinstance(exc, (RetryLater, HandlerTimeout)):
                    raise
                if isinstance(exc, StateError) and not isinstance(exc, StateValueError):
                    raise
                self._report(exc, call, route, "a hangup listener failed")

    def _refuse(self, route: Route, why: str) -> WebhookReply:
        log.warning("flow %s route %s: refused: %s", self.flow_name, route.name, why)
        return WebhookReply(403, b"signature check failed\n", "text/plain; charset=utf-8")

    @staticmethod
    def _render(result: object) -> bytes:
        if result is None:
            return EMPTY_DOCUMENT
        if type(result) is Response:
            return result.to_bytes()
        if isinstance(result, Response):
            # Rendered as a Response is, checks and all: a subclass's own to_bytes served
            # its bytes unchecked (a bare '&', elements after a Hangup), and Vobiz drops
            # such a call (8011).
            return Response.to_xml(result).encode()
        if isinstance(result, Element):
            raise ElementError(
                f"a handler must return a Response document, not a bare <{result.tag}>: "
                f"wrap it as Response({type(result).__name__}(...))",
                element=result.tag,
            )
        hint = (
            "; turn XML text into one with answerkit.parse(text)"
            if isinstance(result, (str, bytes))
            else foreign_result_hint(result)
        )
        kind = type(result)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}"
        )
        raise ElementError(f"a handler must return answerkit.Response or None, got {name}{hint}")

    def _forget(self, call: CallRequest, route: Route, started: float) -> StateError | None:
        """Expire the call's state after its Hangup; the store's error, if it failed in
        time. Waited for within what is left of the status deadline (see _expiry_thread):
        one still under way then goes on in the background, and the Hangup is answered."""

        def forget() -> None:
            # Not cleared at once by default: Vobiz sends the Dial action, RecordStop and
            # late status callbacks after the Hangup webhook (spec §2.13); they need it.
            if self.hangup_linger > 0:
                self.store().expire(call.call_uuid, self.hangup_linger)
            else:
                self.store().clear(call.call_uuid)

        left = self._left(started)
        try:
            if left is None:  # no status deadline: as long as the store takes
                forget()
                return None
            future = expiries.submit(forget)
            if future is None:
                log.warning(
                    "flow %s route %s: the state of call %s is not expired: too many "
                    "expiries are still running past their Hangups' answers (store calls "
                    "that never return?); it lives until its TTL",
                    self.flow_name,
                    route.name,
                    loggable(call.call_uuid),
                )
                return None
            try:
                # exception(), not result(): a store's own TimeoutError, raised as the
                # wait ran out, must not be taken for the wait's.
                failure = future.exception(timeout=max(left, 0.0))
            except FutureTimeout:
                expiries.abandon(future)
                future.add_done_callback(partial(self._expired_late, call, route))
                log.warning(
                    "flow %s route %s: the state of call %s is still being expired when "
                    "the status deadline passed; answered, it goes on in the background",
                    self.flow_name,
                    route.name,
                    loggable(call.call_uuid),
                )
                return None
            if failure is not None:
                raise failure
        except StateError as exc:
            self._report(exc, call, route, "could not expire call state on hangup")
            return exc
        return None

    def _expired_late(self, call: CallRequest, route: Route, done: Future[None]) -> None:
        """An expiry that outlived its Hangup's answer has ended: said if it failed (the
        state then lives until its TTL)."""
        exc = done.exception()
        if exc is not None:
            self._report(exc, call, route, "could not expire call state on hangup (late)")
