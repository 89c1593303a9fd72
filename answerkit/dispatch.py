"""The framework-neutral webhook pipeline: verify, parse, run the handler, answer.

Vobiz drops the caller when a webhook answers with an error status or invalid XML,
so every path through :meth:`Dispatcher.handle` ends in a 200 with a valid document
(or an empty 200 for status callbacks), except the two answers that protect the
application, 403 for a request that is not from Vobiz and 400 for one that is not a
call callback at all, and an empty 503 to a status callback that Vobiz should send again
(its handler raised RetryLater, ran past ``status_deadline`` or met the store down):
Vobiz ignores a status callback's answer but retries it on a non-200 (spec §2.12).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urlsplit

from answerkit._deadline import (
    DeadlineRunner,
    Handler,
    HandlerState,
    LateTransferRefused,
    handler_given_up,
    loggable,
)
from answerkit._log import QuietLog
from answerkit._params import ParamsLike
from answerkit._sound import not_sound, not_sound_message
from answerkit.elements import Element, Response
from answerkit.errors import ElementError, HandlerTimeout, RetryLater, StateError, StateValueError
from answerkit.request import CallRequest, Event, MissingCallUUID
from answerkit.signature import HeadersLike, Verifier, header_value, public_url_candidates
from answerkit.state import NoCallState, StateStore

log = QuietLog("answerkit")

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

ErrorHook = Callable[[BaseException, "CallRequest | None", str], None]

#: Events whose answer Vobiz ignores (spec §2.12): they never get the answer handler of a
#: route by accident, and a failure while handling them answers an empty 200 (503 when
#: it is to be sent again).
STATUS_EVENTS: frozenset[str] = frozenset(
    e.value
    for e in (
        Event.Hangup,
        Event.Ring,
        Event.DialAnswer,
        Event.DialConnected,
        Event.DialDigitsMatch,
        Event.DialHangup,
        Event.RecordStop,
        Event.ConferenceEnter,
        Event.ConferenceExit,
        Event.ConferenceDigitsMatch,
        Event.StartStream,
        Event.PlayedStream,
        Event.ClearedAudio,
        Event.DegradedStream,
        Event.DroppedStream,
        Event.StopStream,
        Event.MachineDetection,
    )
)

_HANGUP = Event.Hangup.value
_STARTS = frozenset({Event.StartApp.value, Event.Transfer.value})

#: The only exceptions a handler may pass on to the server: the process is being stopped.
#: Every other one, BaseExceptions included (asyncio.CancelledError out of a handler's
#: asyncio.run, a library's own BaseException), gets the fallback: Flask would let them
#: reach the WSGI server, which answers 500 or loses the worker.
PROCESS_EXITS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit)


def _passes_through(exc: BaseException) -> bool:
    """Whether ``exc`` must reach the server: the process is being stopped, or (greenlet's
    GreenletExit, under gevent or eventlet workers) the greenlet serving it is being killed,
    which a fallback answer would keep running.

    A stop comes as a signal, and Python raises those in the main thread only: off it (a
    gthread worker's request thread, a handler thread), a SystemExit or KeyboardInterrupt
    is the handler's own code (argparse, a ``sys.exit`` in a helper), which dropped the
    caller and took the worker down with it."""
    if type(exc).__name__ == "GreenletExit":
        return True
    return isinstance(exc, PROCESS_EXITS) and threading.current_thread() is threading.main_thread()


#: Failure log lines show at most this much of an exception's text: one webhook's 20 MB
#: message was written twice (the line and its traceback).
EXC_TEXT_MAX = 2000


def describe(exc: BaseException) -> str:
    """``str(exc)`` for a log line: bounded, and never raising (an exception whose
    ``__str__`` fails lost the whole log line, CallUUID and all)."""
    try:
        text = str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose text cannot be shown>"
    if len(text) > EXC_TEXT_MAX:
        text = f"{text[: EXC_TEXT_MAX - 40]}... ({len(text)} characters in all)"
    return text


XML_CONTENT_TYPE = "application/xml; charset=utf-8"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
EMPTY_DOCUMENT = Response().to_bytes()


# Named tuples, not frozen dataclasses: as immutable, and a third of the cost to build
# (two of them per webhook).
class WebhookRequest(NamedTuple):
    """What the web layer hands to the dispatcher: one HTTP request, already read."""

    method: str
    path: str
    #: Reads the Vobiz parameters (form or query string: a mapping or ``(name, value)``
    #: pairs); called only once the signature has been checked, so an unsigned body is
    #: never parsed.
    read_params: Callable[[], ParamsLike]
    query: Mapping[str, str]
    headers: HeadersLike
    scheme: str = "https"
    host: str = ""
    script_root: str = ""


class _Seen:
    """What the pipeline has learnt of a webhook so far, for its last resort: the call once
    read (to answer for its event, and name it), the replay keys once recorded (to forget
    them when the answer asks Vobiz to send it again)."""

    __slots__ = ("call", "replay_keys")

    def __init__(self) -> None:
        self.call: CallRequest | None = None
        self.replay_keys: tuple[str, ...] = ()


class WebhookReply(NamedTuple):
    """What the dispatcher answers: a status, a body and its content type."""

    status: int
    body: bytes = b""
    content_type: str = XML_CONTENT_TYPE
    headers: Mapping[str, str] = _NO_HEADERS


@dataclass
class Route:
    """One call-flow URL and the handlers it runs, per event."""

    name: str
    path: str
    status_callback: bool = False
    handlers: dict[str | None, Handler] = field(default_factory=dict)
    #: Whether a request's signature is recorded, so that a replay is refused. Off only for
    #: a route whose answer is the same whoever asks and whenever (hold music).
    replay_check: bool = True
    #: A URL Vobiz fetches only for audio (waitSound, dialMusic, confirmSound): its answer
    #: may hold only Play, Speak and Wait, and a failure answers the sound fallback.
    sound: bool = False

    def handler_for(self, event: str) -> Handler | None:
        """The handler an event runs on this route, or None when it runs none."""
        handler = self.handlers.get(event)
        if handler is not None:
            return handler
        if self.status_callback or event not in STATUS_EVENTS:
            return self.handlers.get(None)
        return None

    @property
    def events(self) -> list[str | None]:
        """The events with their own handler (None: the route's default handler)."""
        return list(self.handlers)

    def drops(self, event: str) -> bool:
        """Whether a status callback of ``event`` reaches no handler here, on a route that
        handles no status event by name (but Hangup), so that what it reports (a recording's
        URL) is lost, most likely unawares. A route with handlers for some events (a Dial's
        DialHangup, say) leaves the others alone on purpose; and apps often send Hangup to
        a route that leaves it alone."""
        if event not in STATUS_EVENTS or event == _HANGUP or self.handler_for(event):
            return False
        return not any(e in STATUS_EVENTS and e != _HANGUP for e in self.handlers if e)


def dropped_callback_note(route: Route, event: str) -> str:
    """What to tell about a status callback :meth:`Route.drops` (logs, the simulator)."""
    return (
        f"a {event} callback reached no handler, so its fields were dropped (a route's "
        f"default handler never runs for one): declare a handler for it with "
        f"@flow.route({route.path!r}, event={event!r}), or, if the route only takes "
        f"callbacks (a Conference's or a Stream's), declare it with status_callback=True "
        f"so that its handler runs for every event"
    )


class SignatureGate:
    """Signature and replay checking for one flow (spec §3)."""

    def __init__(
        self,
        auth_tokens: Sequence[str],
        public_url: str | None,
        trusted_proxies: int,
        replay_window: float,
    ) -> None:
        self._verifier = Verifier(auth_tokens)
        self.public_url = public_url
        self.trusted_proxies = trusted_proxies
        self.replay_window = replay_window

    def check(self, req: WebhookRequest) -> tuple[str | None, tuple[str, ...], str]:
        """The signature check: (None, or why the request is refused; its replay keys; the
        URL tried, for the log). The replay keys are for :meth:`StateStore.remember_all`:
        every (nonce, signature) pair of the request, so that a replay dropping some of the
        signature headers still matches the original."""
        candidates = public_url_candidates(
            self.public_url,
            scheme=req.scheme,
            host=req.host,
            script_root=req.script_root,
            path=req.path,
            headers=req.headers,
            trusted_hops=self.trusted_proxies,
        )
        url = candidates[0] if candidates else req.path
        reason, replay_keys = self._verifier.check(req.headers, candidates)
        if reason != "ok":
            return f"{_REFUSED[reason]} for {url}{_REFUSED_HINT[reason]}", (), url
        return None, replay_keys, url

    @property
    def needs_host(self) -> bool:
        """Whether :meth:`check` reads the request's host (only without a public URL)."""
        return not self.public_url


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


def _hint(exc: BaseException) -> str:
    """What a handler error usually means, where the exception's own text does not say."""
    if isinstance(exc, RuntimeError) and "request context" in describe(exc):
        # flask.request in a handler: the route may be answered ahead of Flask's dispatch.
        return (
            " (a handler takes the webhook as its one argument: read call.params or the "
            "typed fields such as call.digits, not flask.request)"
        )
    return ""


#: How many times Vobiz sends a status callback again after a non-200 (spec §2.12).
STATUS_RETRIES = 3

_REFUSED = {"unsigned": "no signature headers", "mismatch": "signature mismatch"}
_REFUSED_HINT = {
    # Spec §3.1: Vobiz signs only callback URLs with auth credentials configured on them.
    "unsigned": (
        ": if no request is ever signed, Vobiz does not sign this account's callbacks (spec "
        "§3.1) and every call is refused until it does; verify=False skips the check"
    ),
    "mismatch": (
        ": check the auth token(s) and that public_url is the URL Vobiz calls (nonces must "
        "be the 20 digits Vobiz sends)"
    ),
}


_EMPTY_STATUS_REPLY = WebhookReply(200, b"", "text/plain; charset=utf-8")
_EMPTY_DOCUMENT_REPLY = WebhookReply(200, EMPTY_DOCUMENT)
_SEND_AGAIN_REPLY = WebhookReply(503, b"", "text/plain; charset=utf-8")

#: The Event of a Dial's action (DialAction or Redirect, spec §6 item 8) and of a Record's:
#: sent to a status-callback route with redirect=false, each wants an empty Response back
#: (spec §2.12), and Vobiz does not send it again.
_ACTION_EVENTS = frozenset(e.value for e in (Event.Redirect, Event.DialAction, Event.Record))
_RECORD_ACTION = Event.Record.value
#: The Event of a waitSound fetch (spec §2.9), the one sound fetch that names itself.
_WAIT_SOUND = Event.ConferenceRemoteSounds.value


def _event_name(call: CallRequest) -> str:
    return str(call.event.value if isinstance(call.event, Event) else call.event)


def _read_call(req: WebhookRequest) -> CallRequest | None:
    """The request's call for a log line and its Event (a signed request's body only), or
    None when it cannot be read."""
    try:
        return CallRequest.from_params(req.read_params())
    except Exception:
        return None


def _status_reply(event: str) -> WebhookReply:
    """The answer to a webhook handled as a status callback: an empty 200, Vobiz ignoring
    the body (spec §2.12); an empty Response to an action sent to a status-callback route
    (a Record's or a Dial's with redirect=false must get one, §2.5, §2.6: an empty body is
    no document)."""
    return _EMPTY_DOCUMENT_REPLY if event in _ACTION_EVENTS else _EMPTY_STATUS_REPLY


@dataclass
class Dispatcher:
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
        """Warn (once per prefix) when the app is served under a prefix (SCRIPT_NAME) that
        the public URL lacks: the signature check takes both readings, but every URL
        url_for builds (actions, transfers) would leave the prefix out."""
        prefix = script_root.rstrip("/")
        if not prefix or not self.public_url:
            return
        if urlsplit(self.public_url).path.rstrip("/").endswith(prefix):
            return
        self._tell_once(
            route,
            f"SCRIPT_NAME {prefix}",
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
            self._report(exc, seen.call, route, "unexpected error in the webhook pipeline")
            reply = self._without_handler(route, seen.call)
            if reply.status == 503 and seen.replay_keys:
                # Sent again, it must not be refused as a replay of itself.
                self._readmit_logged(route, seen.replay_keys)
            return reply

    def _handle(self, route: Route, req: WebhookRequest, seen: _Seen) -> WebhookReply:
        # Status callbacks have one deadline for the whole webhook (Vobiz waits 3 s for an
        # answer, spec §2.12): the replay record, the hangup listeners and the handler
        # share it.
        started = time.monotonic()
        if req.script_root:
            self._check_script_root(route, req.script_root)
        gate = self.verifier
        replay_keys: tuple[str, ...] = ()
        if gate is not None:
            refused, replay_keys, url = gate.check(req)
            if refused is not None:
                return self._refuse(route, refused)
            # Recorded before anything else happens, so a signature is spent even by a
            # request refused below (no CallUUID, a body that fails to read): the body is
            # not signed, and the same headers must not come back with another one.
            try:
                fresh = (
                    self.store().remember_all(replay_keys, gate.replay_window)
                    if route.replay_check
                    else True
                )
            except StateError as exc:
                return self._store_down(
                    route, _read_call(req), exc, "replay check failed: state store unreachable"
                )
            if not fresh:
                return self._refuse(route, f"replayed signature for {url}")
            seen.replay_keys = replay_keys
        # Only a signed request's body is read.
        try:
            call = CallRequest.from_params(
                req.read_params(), method=req.method, query=req.query, path=req.path
            )
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
                return self._store_down(route, call, exc, "state store unreachable")
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
        reply = self._respond(route, call, event, status_event, replay_keys, started)
        if event == _HANGUP and reply.status != 503:  # a 503: the retry needs the state
            failure = self._forget(call, route)
            if failure is not None:
                # Answered 200, the state would outlive the call for the whole TTL (and a
                # short outage must not lose a Hangup): sent again, it may find the store
                # back. The handler runs again then; Vobiz's retries ask the same of it.
                return self._retry_later(failure, call, route, replay_keys)
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
                return self._retry_later(exc, call, route, replay_keys)
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
                return self._retry_later(exc, call, route, replay_keys)
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
        self, exc: BaseException, call: CallRequest, route: Route, replay_keys: tuple[str, ...]
    ) -> WebhookReply:
        """A status callback to be sent again (its handler asked with RetryLater, or ran out
        of time): 503, which Vobiz retries up to 3 times (spec §2.12), with the signature
        forgotten so a retry carrying it again is not refused as a replay."""
        if replay_keys:
            self._readmit_logged(route, replay_keys)
        log.warning(
            "flow %s route %s: asking Vobiz to send event %r again (call %s): %s",
            self.flow_name,
            route.name,
            str(call.event),
            loggable(call.call_uuid),
            describe(exc),
        )
        return WebhookReply(503, b"", "text/plain; charset=utf-8")

    def _readmit_logged(self, route: Route, replay_keys: tuple[str, ...]) -> None:
        """:meth:`_readmit` for a 503, saying when it cannot be done."""
        if self.verifier is not None:
            try:
                readmitted = self._readmit(replay_keys, self.verifier.replay_window)
            # Any error: a store of one's own may raise its client's (after the very
            # failure that brought the 503).
            except Exception as err:
                log.warning(
                    "flow %s route %s: the signature could not be forgotten, so a retry "
                    "that carries it again will be refused as a replay: %s",
                    self.flow_name,
                    route.name,
                    err,
                )
            else:
                if not readmitted:
                    log.warning(
                        "flow %s route %s: this signature was sent again %d times already; "
                        "another copy is refused as a replay",
                        self.flow_name,
                        route.name,
                        STATUS_RETRIES,
                    )

    def _readmit(self, replay_keys: tuple[str, ...], window: float) -> bool:
        """Forget the request's signature for its next delivery, at most STATUS_RETRIES
        times (as many as Vobiz retries): a captured copy cannot drive the handler again
        and again. False once they are used up."""
        store = self.store()
        for n in range(1, STATUS_RETRIES + 1):
            if store.remember_all([f"{key}:retry{n}" for key in replay_keys], window):
                store.forget_all(replay_keys)
                return True
        return False

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
            else ""
        )
        kind = type(result)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}"
        )
        raise ElementError(f"a handler must return answerkit.Response or None, got {name}{hint}")

    def _forget(self, call: CallRequest, route: Route) -> StateError | None:
        """Expire the call's state after its Hangup; the store's error, if it failed."""
        # Not cleared at once by default: Vobiz sends the Dial action, RecordStop and late
        # status callbacks after the Hangup webhook (spec §2.13), and they need the state.
        try:
            if self.hangup_linger > 0:
                self.store().expire(call.call_uuid, self.hangup_linger)
            else:
                self.store().clear(call.call_uuid)
        except StateError as exc:
            self._report(exc, call, route, "could not expire call state on hangup")
            return exc
        return None

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
            _hint(exc),
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
