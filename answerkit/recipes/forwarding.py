"""Call forwarding: ring several numbers at once or one after another, then fall back.

Compiles to two routes: ``/{name}`` dials and ``/{name}/result`` receives the Dial
``action``. Sequential forwarding carries the index of the number being tried in the
query string, so a repeated action callback dials the same next number again instead
of skipping one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from answerkit.elements import Dial, Hangup, Number, Redirect, Response, Speak, User
from answerkit.errors import ConfigurationError, ElementError
from answerkit.request import CallRequest

if TYPE_CHECKING:
    from answerkit.app import CallFlow

Fallback = str | Callable[[CallRequest], Response]


def _no_one_answered(call: CallRequest) -> Response:
    return Response(Speak("Nobody is available to take your call. Goodbye."), Hangup())


class Forwarding:
    """Forward the caller to ``numbers`` (E.164 numbers or ``sip:`` URIs).

    ``mode="simultaneous"`` rings them all in one Dial (the first to answer wins);
    ``mode="sequential"`` rings each for ``timeout`` seconds in turn. When no one
    answers (busy, no answer, failure), the caller goes to ``fallback``: a route
    name (voicemail) or a handler.
    """

    def __init__(
        self,
        flow: CallFlow,
        name: str,
        *,
        numbers: Sequence[str],
        caller_id: str,
        mode: Literal["simultaneous", "sequential"] = "simultaneous",
        timeout: int = 20,
        announcement: str | None = "Please hold while we connect your call.",
        fallback: Fallback = _no_one_answered,
    ) -> None:
        if isinstance(numbers, str):
            # A string is a sequence too: each of its characters would be dialled.
            raise ConfigurationError(
                f"Forwarding {name!r}: numbers must be a list such as [{numbers!r}], "
                "not a single string"
            )
        if not numbers:
            raise ConfigurationError(f"Forwarding {name!r}: give at least one number")
        if mode not in ("simultaneous", "sequential"):
            raise ConfigurationError(
                f"Forwarding {name!r}: mode must be 'simultaneous' or 'sequential', got {mode!r}"
            )
        if not isinstance(fallback, str) and not callable(fallback):
            # Found only when nobody answered: a TypeError then, and the apology.
            raise ConfigurationError(
                f"Forwarding {name!r}: fallback must be a route name or a handler, got {fallback!r}"
            )
        self.flow = flow
        self.name = name
        self.numbers = list(numbers)
        self.caller_id = caller_id
        self.mode = mode
        self.timeout = timeout
        self.announcement = announcement
        self.fallback = fallback
        self.result_route = f"{name}_result"
        # Build every Dial now so that a bad number or caller id fails at start-up, not on
        # a call (a bad second number would drop the caller when the first is busy).
        for index in range(len(self.numbers)) if mode == "sequential" else [None]:
            try:
                self._dial(index, action="https://check.invalid/")
            except ElementError as exc:
                raise ConfigurationError(
                    f"Forwarding {name!r}: numbers=, caller_id= and timeout= make no valid "
                    f"Dial: {exc}"
                ) from exc
        flow.add_route(f"/{name}", self._start, name=name)
        flow.add_route(f"/{name}/result", self._result, name=self.result_route)
        flow.add_check(self._validate)

    def _dial(self, index: int | None, *, action: str) -> Dial:
        targets = self.numbers if index is None else [self.numbers[index]]
        legs = [User(t) if t.startswith("sip:") else Number(t) for t in targets]
        return Dial(*legs, caller_id=self.caller_id, timeout=self.timeout, action=action)

    def _start(self, call: CallRequest) -> Response:
        first = 0 if self.mode == "sequential" else None
        action = self.flow.url_for(self.result_route, index=first)
        items = [Speak(self.announcement)] if self.announcement else []
        return Response(*items, self._dial(first, action=action))

    def _result(self, call: CallRequest) -> Response:
        if call.dial_status == "completed":
            return Response(Hangup())
        if self.mode == "sequential":
            try:
                index = int(call.query.get("index", "0")) + 1
            except ValueError:
                index = len(self.numbers)
            # Only an index this recipe wrote (0 up to the last number) moves on; anything
            # else (a hand-edited URL) goes to the fallback, never re-dials from the top.
            if 1 <= index < len(self.numbers):
                action = self.flow.url_for(self.result_route, index=index)
                return Response(self._dial(index, action=action))
        if isinstance(self.fallback, str):
            return Response(Redirect(self.flow.url_for(self.fallback)))
        return self.fallback(call)

    def _validate(self, flow: CallFlow) -> None:
        # The Dial action is a URL of the flow: without a public URL every call would
        # hear only the fallback, so forwarding fails when mounted instead.
        try:
            flow.url_for(self.result_route)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"Forwarding {self.name!r} cannot build its URLs: {exc}"
            ) from None
        if isinstance(self.fallback, str):
            try:
                flow.get_route(self.fallback)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"Forwarding {self.name!r}: fallback leads nowhere: {exc}"
                ) from None
