"""Running a handler with a time limit, and what a handler past it may no longer do.

:class:`DeadlineRunner` runs a handler with the flow's deadline: interrupted by SIGALRM in
the main thread (gunicorn sync workers), abandoned in a daemon thread elsewhere. A handler
abandoned there runs on; its ``call.state`` writes (:class:`HandlerState`) and its
transfers (:func:`handler_given_up`) are refused from then on, and an error it ends with
is still logged. Used by :mod:`answerkit.dispatch`, which re-exports the public names.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import linecache
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any

from answerkit._handler_threads import HandlerThreads
from answerkit._log import QuietLog
from answerkit.errors import HandlerTimeout
from answerkit.request import CallRequest
from answerkit.state import CallState, StateStore

if TYPE_CHECKING:
    from answerkit.elements import Response

log = QuietLog("answerkit")

Handler = Callable[[CallRequest], "Response | None"]

_HAS_ALARM = hasattr(signal, "SIGALRM")

# signal.getsignal wraps the C function to turn its answer into an enum, which raises and
# catches ValueError for every Python-level handler: the C function itself is 50x cheaper.
try:
    from _signal import getsignal as _getsignal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - every CPython has _signal
    _getsignal = signal.getsignal


class LateTransferRefused(HandlerTimeout):
    """A transfer asked for by a handler past its deadline, refused before anything was
    sent (the caller was answered with the fallback already)."""


class HandlerState(CallState):
    """``call.state`` as a handler sees it: written through until the handler is abandoned
    at its deadline, refused after.

    Off the main thread the deadline cannot interrupt a handler (see DeadlineRunner): it
    runs on while the caller hears the fallback, and Vobiz goes on with the call (its
    Hangup webhook clears the state). A write landing after that would bring the state back
    for the whole TTL, or show a later webhook the work of a handler whose answer was never
    used. A write already under way at the deadline may still land.
    """

    __slots__ = ("abandoned",)

    def __init__(self, store: StateStore, call_uuid: str) -> None:
        super().__init__(store, call_uuid)
        self.abandoned = False

    def _writable(self) -> None:
        if self.abandoned or _struck_here():
            # Raised in the abandoned handler, which stops there as SIGALRM would stop it.
            raise HandlerTimeout(
                f"call {self.call_uuid}: state write refused: the handler is past its "
                "deadline and the caller was answered with the fallback"
            )
        take_put_off_deadline()

    def _snapshot(self) -> dict[str, Any]:
        snapshot = super()._snapshot()
        take_put_off_deadline()
        return snapshot


class _Alarm:
    """The process's SIGALRM deadline. Its handler is installed once and left in place
    (``signal.signal`` costs more than a webhook's whole timer use); ``armed`` says whether a
    deadline of ours is running, and a SIGALRM that arrives when none is goes to the handler
    that was installed before ours. ``fired``: the deadline passed during this handler."""

    armed = False
    fired = False
    due = False  # the deadline passed (raised, or put off: see _unsafe_to_interrupt)
    put_off = False  # it struck in code it may not interrupt, and is still to be raised
    due_at = 0.0  # time.monotonic() when it first struck
    in_grace = False  # inside deadline_grace()
    ticking = False  # our timer may be running (armed or not)
    previous: object = None


#: Seconds after the deadline before a handler that caught its HandlerTimeout (``except
#: Exception`` in a retry loop) is interrupted again, then every REPEAT seconds, by an
#: exception that ``except Exception`` does not catch, so it is not left to run unbounded.
#: The grace leaves an ``except HandlerTimeout`` clean-up time to finish (the recipes'
#: own runs under :func:`deadline_grace` besides).
REPEAT_AFTER = 1.0
REPEAT = 0.25
#: Seconds to wait when the deadline strikes inside logging (a handler's lock is taken
#: outside a ``try`` before Python 3.13: an exception there leaves it held, and every other
#: thread that logs through that handler then blocks for good).
RETRY_SOON = 0.01


class _DeadlineIgnored(BaseException):
    """Raised by the SIGALRMs after the first, in a handler that caught its HandlerTimeout:
    no ``except Exception`` stops it (a bare ``except:`` still would). The runner turns it
    back into a HandlerTimeout."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    if _Alarm.armed:
        if not _Alarm.due:
            _Alarm.due_at = time.monotonic()
        _Alarm.due = True
        try:
            unsafe = _unsafe_to_interrupt(frame)
        except Exception:  # never let the check itself stop the timer for good
            unsafe = True
        if unsafe:
            _Alarm.put_off = True
            signal.setitimer(signal.ITIMER_REAL, RETRY_SOON)
            return
        _strike()
    if _Alarm.ticking:
        # Our timer's, after the handler ended or in a deadline_grace() (or between the
        # grace's own flag writes): the deadline still passed, and is taken when the grace
        # ends, or seen by the runner as a late return.
        now = time.monotonic()
        if not _Alarm.due:
            _Alarm.due_at = now
        _Alarm.due = True
        if _Alarm.in_grace:
            # A grace holds a few store writes together; a store stalled inside one must
            # not hold the worker for good: past STORE_PUT_OFF_LIMIT it is struck, as a
            # store call that holds the deadline off is.
            over = now - _Alarm.due_at
            if over < STORE_PUT_OFF_LIMIT:
                signal.setitimer(signal.ITIMER_REAL, STORE_PUT_OFF_LIMIT - over)
                return
            try:
                # Logging's lock lines, still; and the grace's own entry and exit: struck
                # there, the grace's finally would run only after the runner had ended, and
                # start the timer again for whatever the worker does next.
                unsafe = _unsafe_to_interrupt(frame) or _in_grace_machinery(frame)
            except Exception:
                unsafe = True
            if unsafe:
                signal.setitimer(signal.ITIMER_REAL, RETRY_SOON)
                return
            _strike()
        return
    previous = _Alarm.previous
    if callable(previous):
        previous(signum, frame)


def _strike() -> None:
    """Raise the deadline in the handler, and set the timer for the next strike."""
    _Alarm.put_off = False
    if _Alarm.fired:
        signal.setitimer(signal.ITIMER_REAL, REPEAT)
        raise _DeadlineIgnored
    _Alarm.fired = True
    signal.setitimer(signal.ITIMER_REAL, REPEAT_AFTER)
    raise HandlerTimeout("handler deadline passed")


def take_put_off_deadline() -> None:
    """Raise a deadline that struck where it could not be raised (inside a RedisStore
    operation, say), now that the handler is back in safe code: ``call.state`` calls it
    after each read and before each write, so a handler busy with its state stops there,
    and no write of its lands past the deadline."""
    if _Alarm.put_off and _Alarm.armed and threading.current_thread() is threading.main_thread():
        _strike()


def _unsafe_to_interrupt(frame: FrameType | None) -> bool:
    """Whether the interrupted code is the runner's own (an exception there would escape
    it) or logging's at the line that takes a lock (before Python 3.13 a handler's lock is
    taken outside its ``try``: an exception right after the take leaves it held, and every
    other thread logging through that handler then blocks for good). The deadline is then
    taken a moment later, and a handler that returns meanwhile is past it all the same."""
    if frame is None:
        return False
    code = frame.f_code
    if code is _RUN_CODE:
        return True
    # A RedisStore operation (in redis-py between a command and its reply, a pipeline's
    # MULTI/EXEC say): an exception there returned the connection to the pool with the reply
    # unread, and the worker's next webhooks read each other's replies. Only the store's
    # own calls, whose socket timeouts bound them, and for STORE_PUT_OFF_LIMIT at most: a
    # handler's own Redis client (a blocking BLPOP, a lock) is interrupted as any code is.
    outer: FrameType | None = frame
    while outer is not None:
        if outer.f_code.co_filename in _STORE_FILES:
            return time.monotonic() - _Alarm.due_at < STORE_PUT_OFF_LIMIT
        outer = outer.f_back
    if code.co_filename != _LOGGING_FILE:
        return False
    if code.co_name in _LOGGING_LOCKERS:
        return True
    # f_lineno is None at some instructions (a frame's line 0 in 3.11).
    line = linecache.getline(_LOGGING_FILE, frame.f_lineno or 0)
    return "acquire" in line or "release" in line


def _source_files(*modules: str) -> frozenset[str]:
    """The source files of ``modules`` (not imported), as code objects name them."""
    files: set[str] = set()
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin:
            files |= {spec.origin, os.path.realpath(spec.origin)}
    return frozenset(files)


#: Modules whose store operations a deadline waits out (see _unsafe_to_interrupt).
_STORE_FILES = _source_files("answerkit.state_redis")
#: Seconds past the deadline a store operation may hold it off: twice RedisStore's
#: default socket timeout and its one retry, and a little more.
STORE_PUT_OFF_LIMIT = 5.0
_LOGGING_FILE = logging.__file__
#: logging's functions that take or give back a lock, or hold one between the two.
_LOGGING_LOCKERS = frozenset(
    ("acquire", "release", "_acquireLock", "_releaseLock", "handle", "flush")
)
linecache.getline(_LOGGING_FILE, 1)  # read now, not in a signal handler


def _in_grace_machinery(frame: FrameType | None) -> bool:
    """Whether ``frame`` is deadline_grace()'s own code or contextlib's around it."""
    return frame is not None and frame.f_code in _GRACE_CODES


@contextmanager
def deadline_grace() -> Iterator[None]:
    """Hold off the SIGALRM deadline while answerkit's own clean-up after a HandlerTimeout
    runs (a recipe recording what is owed to the caller): it must not be cut short halfway.
    The deadline's pressure resumes after it."""
    if not _Alarm.armed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _Alarm.armed = False
    _Alarm.in_grace = True
    try:
        yield
    finally:
        _Alarm.in_grace = False
        # Not once the runner has ended (ticking is then False): a grace unwound late must
        # not start the timer for whatever the worker does next.
        if _Alarm.ticking:
            _Alarm.armed = True
            if _Alarm.fired:
                signal.setitimer(signal.ITIMER_REAL, REPEAT)
            elif _Alarm.due:  # the first deadline passed during the grace: taken after it
                signal.setitimer(signal.ITIMER_REAL, RETRY_SOON)


_GRACE_CODES = frozenset(
    (
        deadline_grace.__wrapped__.__code__,  # type: ignore[attr-defined]
        contextlib._GeneratorContextManager.__enter__.__code__,
        contextlib._GeneratorContextManager.__exit__.__code__,
    )
)


class DeadlineRunner:
    """Runs a handler with a time limit.

    In the main thread (gunicorn sync workers, the development server's main thread)
    a SIGALRM timer interrupts the handler itself, at the cost of two system calls.
    Elsewhere a daemon thread runs it and the caller stops waiting: the handler's
    thread may go on, but the caller gets its fallback in time, and a handler that never
    returns does not keep the process from exiting.
    """

    def __init__(
        self, seconds: float | None, max_workers: int = 32, status_seconds: float | None = None
    ) -> None:
        self.seconds = seconds
        #: The deadline of status callbacks: Vobiz waits 3 s for them, then retries (spec
        #: §2.12), so answering later would run the handler's work twice.
        self.status_seconds = seconds if status_seconds is None else status_seconds
        self._threads = HandlerThreads(max_workers)

    @property
    def saturated(self) -> bool:
        """True while every handler thread runs a handler given up at its deadline, each
        of them past it by as long again (stuck on a call without a timeout, say): no
        handler of this process can run until one returns. A handler only slow (past its
        deadline by a moment) does not count yet: it may free its thread for the next
        webhook in time. The health endpoint reports it, so a load balancer sends calls
        elsewhere."""
        since = self._threads.stuck_since()
        return since is not None and time.monotonic() >= since

    def run(
        self,
        handler: Handler,
        call: CallRequest,
        status: bool = False,
        left: float | None = None,
    ) -> Response | None:
        """Call ``handler(call)``, raising HandlerTimeout past the deadline (``status``:
        the status callbacks' own; ``left``: what remains of it, when the webhook spent
        some already)."""
        seconds = self.status_seconds if status else self.seconds
        if not seconds:
            return handler(call)
        if left is not None:
            if left <= 0:
                _abandon(call)
                raise HandlerTimeout("handler deadline passed before the handler could start")
            seconds = min(seconds, left)
        if (
            _HAS_ALARM
            and threading.current_thread() is threading.main_thread()
            and not _Alarm.armed
            and signal.getitimer(signal.ITIMER_REAL)[0] == 0
        ):
            # Only when no other real-time timer runs (a test runner's timeout, say):
            # setting ours would silently cancel it.
            if _getsignal(signal.SIGALRM) is not _alarm:
                _Alarm.previous = signal.signal(signal.SIGALRM, _alarm)
            _Alarm.fired = _Alarm.due = _Alarm.put_off = False
            try:
                # Armed inside the try: a SIGALRM as early as the return from setitimer still
                # reaches the finally, which stops the timer.
                _Alarm.armed = _Alarm.ticking = True
                start = time.monotonic()
                signal.setitimer(signal.ITIMER_REAL, seconds)
                result = handler(call)
            except HandlerTimeout:
                _Alarm.armed = False  # first (a plain store): no second one from here on
                _abandon(call)
                raise
            except _DeadlineIgnored:
                _Alarm.armed = False
                _abandon(call)
                raise HandlerTimeout("handler deadline passed (it caught the first)") from None
            finally:
                # Plain stores, which run no signal handler, until the timer is stopped; a
                # SIGALRM still pending then runs as setitimer returns, while ``ticking``
                # still says it is ours (see _alarm).
                _Alarm.armed = _Alarm.in_grace = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                _Alarm.ticking = False
            if _Alarm.due:  # it caught the HandlerTimeout, or it was put off: late all the same
                _abandon(call)
                raise HandlerTimeout("handler deadline passed (the handler returned late)")
            if time.monotonic() - start > seconds:
                # Late, and our timer never said so: the handler's own code took SIGALRM
                # over (a timeout decorator's signal mode), which stopped or swallowed it.
                _abandon(call)
                raise HandlerTimeout(
                    "handler deadline passed (the handler returned late; its code set its "
                    "own SIGALRM handler or timer, which switched the deadline's off)"
                )
            return result
        if self.saturated:
            # Queued, it would wait out the whole deadline behind handlers that are already
            # past theirs, and the caller would hear the fallback after that silence.
            _abandon(call)
            raise HandlerTimeout(
                f"handler never started: all {self._threads.max_threads} handler threads of "
                "this process are held by handlers past their deadline (a network call with "
                "no timeout?); it answers again once one of them returns"
            )
        # The handler's thread sees the caller's context variables: Flask's app and request
        # contexts, a tracing span.
        context = contextvars.copy_context()
        given_up = _GivenUp()
        future: Future[Response | None] = self._threads.submit(
            context.run, _run_marked, given_up, handler, call
        )
        try:
            return future.result(timeout=seconds)
        except FutureTimeout as exc:
            if future.done() and not future.cancelled() and future.exception() is exc:
                # The handler's own TimeoutError (a socket's, a client library's): the same
                # class as the wait's, but its failure, not the deadline.
                raise
            # Still queued (every handler thread busy): it must never start, since the
            # caller is being told to hang up. One already running goes on; see above.
            if future.cancel():
                raise HandlerTimeout(
                    "handler never started: every handler thread of this process was busy "
                    "until the deadline"
                ) from None
            given_up.give_up()  # its later transfers are refused (see handler_given_up)
            state = getattr(call, "state", None)
            if isinstance(state, HandlerState):
                state.abandoned = True  # its later writes are refused
            # Counted while it holds its thread: all of them held so, none can run (saturated).
            # Stuck once past its own deadline again (a status handler's is the shorter).
            self._threads.hold(future, seconds)
            # Nobody reads the future any more: an error it ends with must still be
            # logged, or it would vanish (a failed transfer, a bug past the deadline).
            future.add_done_callback(partial(_log_late, call))
            raise HandlerTimeout("handler deadline passed") from None


def _abandon(call: CallRequest) -> None:
    """Past its deadline: a thread the handler started may still write, refused from now
    on, as on the thread path."""
    state = getattr(call, "state", None)
    if isinstance(state, HandlerState):
        state.abandoned = True


_RUN_CODE = DeadlineRunner.run.__code__


#: Guards _GivenUp's wake-up event, made only when a handler waits (a rare retry).
_WAKE_LOCK = threading.Lock()


class _GivenUp:
    """Raised (``flag``) when DeadlineRunner stops waiting for a handler; a plain slot, as a
    threading.Event costs more than the rest of the hand-off. The event is made only for a
    handler that sleeps (a REST client's wait before a retry), to wake it when given up."""

    __slots__ = ("_wake", "flag")

    def __init__(self) -> None:
        self.flag = False
        self._wake: threading.Event | None = None

    def give_up(self) -> None:
        with _WAKE_LOCK:
            self.flag = True
            if self._wake is not None:
                self._wake.set()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if given up meanwhile."""
        with _WAKE_LOCK:
            if self.flag:
                return
            if self._wake is None:
                self._wake = threading.Event()
            wake = self._wake
        wake.wait(seconds)


#: The handler's _GivenUp, in its own context only.
_GIVEN_UP: contextvars.ContextVar[_GivenUp | None] = contextvars.ContextVar(
    "answerkit_handler_given_up", default=None
)


def _run_marked(given_up: _GivenUp, handler: Handler, call: CallRequest) -> Response | None:
    _GIVEN_UP.set(given_up)
    return handler(call)


def handler_given_up() -> bool:
    """Whether the handler running in this context is past its deadline and abandoned: the
    caller was answered with the fallback, and what it does now acts on a call Vobiz has
    moved on with (a transfer would move it again)."""
    return handler_thread_given_up() or _struck_here()


def handler_thread_given_up() -> bool:
    """Whether this context's handler runs on a handler thread that DeadlineRunner stopped
    waiting for. Only the thread path: a SIGALRM deadline interrupts the handler itself (a
    REST client's wait before a retry included), so the client's retry loop asks this
    alone and a sync worker's handler behaves as before. False outside a webhook."""
    given_up = _GIVEN_UP.get()
    return given_up is not None and given_up.flag


def sleep_unless_given_up(seconds: float) -> None:
    """``time.sleep(seconds)``, cut short when this context's handler thread is given up at
    its deadline (a SIGALRM deadline interrupts a plain sleep by itself)."""
    given_up = _GIVEN_UP.get()
    if given_up is None:
        time.sleep(seconds)
    else:
        given_up.sleep(seconds)


def _struck_here() -> bool:
    """Whether the SIGALRM deadline has struck the handler running in this (the main)
    thread, which carries on: it caught the HandlerTimeout (an ``except Exception``, or
    logging's own, which swallows an exception raised inside a handler's emit). Its answer
    will be the fallback, so its writes and transfers are refused as an abandoned thread's
    are. Not inside deadline_grace(), whose clean-up is meant to land."""
    return _Alarm.fired and _Alarm.armed and threading.current_thread() is threading.main_thread()


def _log_late(call: CallRequest | None, future: Future[Response | None]) -> None:
    exc = future.exception()
    if exc is None or isinstance(exc, HandlerTimeout):  # HandlerTimeout: a refused write
        return
    log.error(
        "call %s: handler failed after its deadline (the fallback was already served): %s: %s",
        loggable(call.call_uuid) if call is not None else "-",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


def loggable(value: str) -> str:
    """``value`` as a log line may carry it: a field from the request with a line break or
    another control character in it would forge log lines, so such a value is shown quoted
    and escaped (repr); an ordinary CallUUID or event stays as it is."""
    return value if value.isprintable() else repr(value)
