"""Call forwarding: ring several numbers at once or one after another, then fall back.

Compiles to two routes: ``/{name}`` dials and ``/{name}/result`` receives the Dial
``action``. Sequential forwarding carries the index of the number being tried in the
query string, so a repeated action callback dials the same next number again instead
of skipping one. A caller who hangs up while the numbers ring (``DialStatus=cancel``) has
gone: nothing more is dialled, and the fallback does not run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from answerkit._keywords import advise_keywords
from answerkit.elements import Dial, Hangup, Number, Redirect, Response, Speak, User
from answerkit.errors import ConfigurationError, ElementError
from answerkit.recipes._targets import (
    Target,
    answered,
    check_no_loop,
    check_target,
    hold_targets,
    passes_on,
)
from answerkit.request import CallRequest, DialStatus

if TYPE_CHECKING:
    from answerkit.app import CallFlow

Fallback = Target  # a route's name, or a handler (one returning None too)


_GOODBYE = "Nobody is available to take your call. Goodbye."


class Forwarding:
    """Forward the caller to ``numbers`` (E.164 numbers or ``sip:`` URIs).

    ``mode="simultaneous"`` rings them all in one Dial (the first to answer wins);
    ``mode="sequential"`` rings each for ``timeout`` seconds in turn. When no one
    answers (busy, no answer, failure), the caller goes to ``fallback``: a route
    name (voicemail) or a handler; by default a goodbye. ``voice`` and ``language`` are
    the announcement's and the default goodbye's. ``caller_id`` is required: an inbound
    call forwarded without one fails (spec §1.2 Dial).
    """

    @advise_keywords("Forwarding")
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
        fallback: Fallback | None = None,
        voice: str | None = None,
        language: str | None = None,
    ) -> None:
        if isinstance(numbers, str):
            # A string is a sequence too: each of its characters would be dialled.
            raise ConfigurationError(
                f"Forwarding {name!r}: numbers must be a list such as [{numbers!r}], "
                "not a single string"
            )
        numbers = list(numbers)  # once: a map or a generator is used up by the check below
        if not numbers:
            raise ConfigurationError(f"Forwarding {name!r}: give at least one number")
        for number in numbers:
            if not isinstance(number, str):
                # An int (14155550121) failed as "'int' object has no attribute 'startswith'".
                raise ConfigurationError(
                    f"Forwarding {name!r}: numbers must be E.164 numbers or sip: URIs as text "
                    f"('+14155550121'), got {type(number).__name__} {number!r}"
                )
        if mode not in ("simultaneous", "sequential"):
            raise ConfigurationError(
                f"Forwarding {name!r}: mode must be 'simultaneous' or 'sequential', got {mode!r}"
            )
        if fallback is not None and not isinstance(fallback, str) and not callable(fallback):
            # Found only when nobody answered: a TypeError then, and the apology.
            raise ConfigurationError(
                f"Forwarding {name!r}: fallback must be a route name or a handler, got {fallback!r}"
            )
        if not isinstance(caller_id, str) or not caller_id:
            # None passed the Dial's check (no callerId at all), and then every inbound
            # call's forward failed: Vobiz refuses a transfer without one (spec §1.2).
            raise ConfigurationError(
                f"Forwarding {name!r}: caller_id must be a Vobiz number of the account, such "
                f"as '+14155551234', got {caller_id!r} (an environment variable not set gives "
                "None)"
            )
        self.flow = flow
        self.name = name
        self.numbers = list(numbers)
        self.caller_id = caller_id
        self.mode = mode
        self.timeout = timeout
        self.announcement = announcement
        self.fallback: Fallback = self._no_one_answered if fallback is None else fallback
        self.voice = voice
        self.language = language
        self.result_route = f"{name}_result"
        self._check_speech()
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
        flow._inner_paths.add(f"/{name}/result")  # the Dial's action, not an entry
        flow._recipe_paths.update((f"/{name}", f"/{name}/result"))
        hold_targets(flow, [self.fallback])
        flow.add_check(self._validate)
        passes_on(flow, name, (name, self.result_route), self.fallback)

    def _check_speech(self) -> None:
        """Build the announcement and the goodbye now: a Speak they make no valid one of
        would otherwise fail on every call, before any number is dialled."""
        texts = [("announcement", self.announcement)] if self.announcement else []
        if self.fallback == self._no_one_answered:
            texts.append(("the default goodbye", _GOODBYE))
        for field, text in texts:
            try:
                self._speak(text)
            except ElementError as exc:
                raise ConfigurationError(
                    f"Forwarding {self.name!r}: its {field} (with voice= and language=) makes "
                    f"no valid Speak: {exc}"
                ) from exc

    def _speak(self, text: str) -> Speak:
        return Speak(text, voice=self.voice, language=self.language)

    def _no_one_answered(self, call: CallRequest) -> Response:
        return Response(self._speak(_GOODBYE), Hangup())

    def _dial(self, index: int | None, *, action: str) -> Dial:
        targets = self.numbers if index is None else [self.numbers[index]]
        legs = [User(t) if t.startswith("sip:") else Number(t) for t in targets]
        return Dial(*legs, caller_id=self.caller_id, timeout=self.timeout, action=action)

    def _start(self, call: CallRequest) -> Response:
        first = 0 if self.mode == "sequential" else None
        action = self.flow.url_for(self.result_route, index=first)
        items = [self._speak(self.announcement)] if self.announcement else []
        return Response(*items, self._dial(first, action=action))

    def _result(self, call: CallRequest) -> Response | None:
        if call.dial_status == DialStatus.COMPLETED:
            return Response(Hangup())
        if call.dial_status == DialStatus.CANCEL:
            # The caller hung up while the numbers rang: there is nobody left to dial for
            # or to send to the fallback (its side effects, a missed-call message, say,
            # are for the caller whom nobody answered).
            return Response()
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
        return answered(self.fallback(call), f"Forwarding {self.name!r}", self.fallback, call)

    def __repr__(self) -> str:
        return (
            f"Forwarding(flow={self.flow.name!r}, name={self.name!r}, numbers={self.numbers!r}, "
            f"mode={self.mode!r})"
        )

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
            check_target(flow, f"Forwarding {self.name!r}", "fallback", self.fallback)
            check_no_loop(flow, f"Forwarding {self.name!r}", self.name)
