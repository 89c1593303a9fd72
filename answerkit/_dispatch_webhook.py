"""The webhook as the pipeline sees it: the request the web layer hands over
(:class:`WebhookRequest`), the reply it gets back (:class:`WebhookReply`), the route that
answers it (:class:`Route`), and which events want which answer.

Vobiz treats events apart: a status callback's answer is ignored but a non-200 has it sent
again (spec §2.12), an action sent to a status-callback route wants an empty document, a
waitSound fetch wants audio. The tables here say which event is which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from answerkit._deadline import Handler
from answerkit._params import ParamsLike
from answerkit.elements import Response
from answerkit.request import CallRequest, Event
from answerkit.signature import HeadersLike

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


class UnreadableBody(ValueError):
    """Raised by ``read_params``: the body could not be read whole (cut short, a broken
    chunked encoding, over one of the app's limits), so its fields are unknown. The
    webhook is refused with ``status`` and the message, never run on part of its fields
    (a cut Digits or CallUUID would act on the wrong key or the wrong call)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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


def _status_reply(event: str) -> WebhookReply:
    """The answer to a webhook handled as a status callback: an empty 200, Vobiz ignoring
    the body (spec §2.12); an empty Response to an action sent to a status-callback route
    (a Record's or a Dial's with redirect=false must get one, §2.5, §2.6: an empty body is
    no document)."""
    return _EMPTY_DOCUMENT_REPLY if event in _ACTION_EVENTS else _EMPTY_STATUS_REPLY
