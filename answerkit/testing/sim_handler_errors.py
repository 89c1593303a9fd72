"""What a healthy-looking reply hides, seen for the transcript: a handler's error, an
``Event`` no handler takes, a status callback's lost fields.

The app answers each of these as it must in production (the flow's fallback document,
or an empty 200) and only logs it, so a test that checks the reply, or that the call
ended normally, would pass. :class:`HandlerErrorTap` catches the errors of the flow's
handlers while a webhook is in flight; :func:`unhandled_event` and
:func:`dropped_callback` tell, from the flow's routes, when the answer came from no
handler at all.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from answerkit._dispatch_failures import describe, hint
from answerkit.dispatch import STATUS_EVENTS, Route, dropped_callback_note

if TYPE_CHECKING:
    from answerkit.app import CallFlow

__all__ = ["HandlerErrorTap", "dropped_callback", "unhandled_event"]

ErrorHook = Callable[[BaseException, Any, str], None]
_TAP_LOCK = threading.Lock()


@dataclass(eq=False)
class _Watch:
    """One watched webhook: where its errors go, its call, the thread that sent it."""

    into: list[str]
    call_uuid: str | None
    thread: int


class _TapHook:
    """What sits on a dispatcher's ``on_error`` while simulators watch its webhooks.

    Several simulators (in several threads) may share one flow, so an error is filed by
    the call it belongs to, never to whichever watcher came last; then it goes on to the
    hook found there (the flow's own), so a hook that raises (the dispatcher logs and
    swallows that) cannot hide it. With no watchers it only forwards.
    """

    def __init__(self, original: ErrorHook | None) -> None:
        self.original = original
        self.watches: list[_Watch] = []  # guarded by _TAP_LOCK; innermost last

    def find(self, call: Any) -> list[str] | None:
        """Where an error of ``call`` goes (call with _TAP_LOCK held)."""
        call_uuid = getattr(call, "call_uuid", None) or None
        newest_first = self.watches[::-1]
        if call_uuid is not None:
            for watch in newest_first:
                if watch.call_uuid == call_uuid:
                    return watch.into
        # No request parsed yet (call is None), or a watcher that named no call: the
        # in-process transport runs the app in the thread that sent the webhook.
        thread = threading.get_ident()
        for watch in newest_first:
            if watch.thread == thread and (call_uuid is None or watch.call_uuid is None):
                return watch.into
        # Served in another thread (a live server) for the only watcher, which named no
        # call: unambiguous. Anything else is not a simulated webhook's error.
        if len(self.watches) == 1 and self.watches[0].call_uuid is None:
            return self.watches[0].into
        return None

    def __call__(self, exc: BaseException, call: Any, route: str) -> None:
        with _TAP_LOCK:
            into = self.find(call)
            original = self.original
            if into is not None:  # recorded first: the flow's hook may raise
                # As the log line has it: bounded, never failing, with the hint (flask.request
                # in a handler: read call's fields), which Flask's own text lacks.
                into.append(f"{route}: {type(exc).__name__}: {describe(exc)}{hint(exc)}")
        if original is not None:
            original(exc, call, route)


class HandlerErrorTap:
    """Sees the errors a flow's handlers raise while one webhook of a call is in flight.

    The app answers such a webhook with the flow's fallback document and a 200, as it must
    in production, so the reply alone looks healthy: a crashing handler would pass a test
    that checks the call ended normally. The tap goes on the dispatcher's ``on_error``
    when a webhook is first watched (:meth:`watching`) and files each error under the
    call it belongs to (its CallUUID, else the thread that sent the webhook), so two
    simulators of one flow in two threads never get each other's errors.

    The dispatcher reads ``on_error`` twice (is it set? call it), so the tap never makes
    it None: with no flow hook beneath, the tap stays once installed (it only forwards
    when nothing is watched); over a flow's own hook it gives way to that hook once no
    webhook is watched, so simulators never closed leave nothing behind and the taps of
    several never stack up. A hook set meanwhile (``check.handler_errors`` swaps in its
    own for a while) is wrapped in turn, and is what the tap gives way to.
    """

    def __init__(self, *dispatchers: Any) -> None:
        # Each flow the app serves: a call may go on to any of them (a Redirect).
        self._dispatchers = dispatchers

    @contextmanager
    def watching(self, into: list[str], call_uuid: str | None = None) -> Iterator[None]:
        """Errors of call ``call_uuid`` met until the block ends go into ``into`` as
        ``route: Type: message`` (without a CallUUID: those of the webhooks this thread
        sends, as in-process)."""
        with contextlib.ExitStack() as watched:
            for dispatcher in self._dispatchers:
                watched.enter_context(_watching(dispatcher, into, call_uuid))
            yield

    def close(self) -> None:
        """Nothing to undo: the tap holds no watcher of a simulator once its webhook ended."""


@contextmanager
def _watching(dispatcher: Any, into: list[str], call_uuid: str | None) -> Iterator[None]:
    """:meth:`HandlerErrorTap.watching` for one flow's dispatcher."""
    watch = _Watch(into, call_uuid or None, threading.get_ident())
    with _TAP_LOCK:
        hook = dispatcher.on_error
        if not isinstance(hook, _TapHook):
            hook = _TapHook(hook)
            dispatcher.on_error = hook
        hook.watches.append(watch)
    try:
        yield
    finally:
        with _TAP_LOCK:
            # By identity: two watches may well be equal.
            hook.watches[:] = [w for w in hook.watches if w is not watch]
            idle = not hook.watches and dispatcher.on_error is hook
            if idle and hook.original is not None:
                # Else the flow's hook was replaced meanwhile: the new one stays.
                dispatcher.on_error = hook.original


def unhandled_event(flow: CallFlow, path: str, params: Mapping[str, str]) -> str | None:
    """Why the app answers this webhook with its fallback for want of a handler, or None.

    The app logs it and serves the fallback with a 200, as it must, so the reply alone
    looks healthy: a flow that depends on an ``Event`` value the platform may not send
    (the Dial action's, spec §6 item 8) would otherwise pass a test.
    """
    event = params.get("Event", "")
    route = _route_at(flow, path)
    if route is None or route.status_callback or event in STATUS_EVENTS:
        return None  # status events get an empty 200 whatever the handlers
    if route.handler_for(event) is not None:
        return None
    why = f"{route.name}: no handler for Event={event!r} on this route: the app served its fallback"
    if "DialStatus" in params:
        why += (
            " (a Dial action's Event may be DialAction or Redirect, spec §6 item 8: "
            "branch on DialStatus, not on the Event)"
        )
    return why


def dropped_callback(flow: CallFlow, path: str, params: Mapping[str, str]) -> str | None:
    """Why this status callback's fields were lost for want of a handler, or None (see
    :meth:`answerkit.dispatch.Route.drops`): the app answers it with an empty 200, as it
    must, and logs it once; a test sees it in ``Transcript.unhandled_callbacks``."""
    event = params.get("Event", "")
    route = _route_at(flow, path)
    if route is None or not route.drops(event):
        return None
    return f"{route.name}: {dropped_callback_note(route, event)}"


def _route_at(flow: CallFlow, path: str) -> Route | None:
    """The route at ``path`` as a URL carries it (url_for percent-encodes "/menú")."""
    prefix = getattr(flow, "_mount_prefix", None) or ""
    decoded = unquote(path)
    return next((r for r in flow.routes if prefix + r.path in (path, decoded)), None)
