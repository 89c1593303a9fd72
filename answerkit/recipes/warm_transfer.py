"""Warm transfer: hold the caller in a room, brief the agent, join them on accept.

The sequence (spec §1.2 Conference notes, §2.13):

1. :meth:`WarmTransfer.start` moves the caller's leg with the Transfer API to the hold
   route: an announcement, then a conference room of their own where they wait with
   ``stayAlone`` and hear ``waitSound`` until a starter joins.
2. It calls the agent (make-call). The agent's answer route whispers the context and
   gathers one key.
3. Accept: the agent joins the caller's room and the call is connected. Decline, busy,
   no answer, a failed call or no key: the caller is moved to the fallback route.
4. A caller who hangs up while waiting leaves the room; that exit cancels the agent call,
   and so does a caller who leaves after the agent accepted (the agent would otherwise
   wait in the room alone).

Exactly one outcome wins: every callback that decides (accept, decline, agent hangup,
caller exit) takes the attempt's ticket with ``incr`` (atomic on every store, a store of
one's own too, where ``set_if_absent`` may be a read and then a write) and its holder
writes the decision (``_warm_ticket.take_decision``: a ticket whose record the store
failed to write is taken over by the next callback), so duplicate and out-of-order
callbacks (Vobiz retries status callbacks, and conference events arrive in any order) do
nothing twice. The outcome is read from that decision, and the move it owes is found from
it too (``_warm_moves``): a store failing after the decision leaves nothing half decided,
and the callback sent again completes what it owes (the move, the agent's hangup, and the
tell: ``warm.told.<n>`` notes the outcome ``on_outcome`` was told, and a callback that
finds one recorded but not told tells it). The record is keyed by the caller's CallUUID
and expires with the store's TTL. Each :meth:`WarmTransfer.start` is a new attempt whose
number travels in every URL (``attempt``) and names the keys of the attempt's record
(``warm.decided.2``): a late callback of an earlier attempt for the same caller (the first
agent's hangup, after a fallback route started a second transfer) decides nothing for the
new one, even when it passed its check just before start() began it, and a new start()
hangs up the earlier attempt's agent (after calling the new one, and not when that agent's
Hangup webhook came already). Attempt 1 keeps the room name of earlier versions
(``warm-<caller>``), later attempts get a room of their own. URLs
without ``attempt`` come from a version of answerkit before attempts (a rolling deploy):
they belong to a transfer whose record has no attempt number. The version just before
numbered keys put ``attempt`` in its URLs but kept the record under the bare keys: an
attempt start() did not mark (``warm.layout.<n>``) is read and decided that way
(``_warm_state.numbered``), or it would be decided a second time.

An agent who accepts but never reaches the room would strand the caller there (stayAlone,
a room nobody starts). Conference callbacks may arrive after the agent's Hangup webhook
(spec §2.9, and §2.12 retries), so a missing ConferenceEnter alone proves nothing: on the
agent's Hangup the caller is moved to the fallback only when no room event of the attempt
shows that the agent was there (the agent's enter or exit, the caller's exit). There is no
live-call check in that status callback (it must answer within 3 s): the transfer itself
finds a caller who is gone. The outcome ``agent-unavailable`` is recorded only once the
move succeeded; a move that fails gives the rescue back to the webhook's retry. A room
event of the agent that arrives after such a move cannot bring the caller back; it
restores the outcome ``accepted``.

This module holds the recipe's public face: its settings, its routes, and start(). The
rest is cut by idea, each in a private module of its own: the caller's hold room and its
events (``_warm_caller``), the agent's whisper, choice and hangup (``_warm_agent``),
deciding and telling the outcome (``_warm_outcome``), the decision's ticket
(``_warm_ticket``), the move to the fallback (``_warm_moves``), and the record's keys and
URLs (``_warm_state``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from answerkit._api_args import check_call_uuid, check_destinations, check_phone
from answerkit._deadline import deadline_grace
from answerkit._keywords import advise_keywords
from answerkit._log import QuietLog
from answerkit._xmltext import shown
from answerkit.elements import Gather, Play, Speak
from answerkit.errors import (
    ArgumentError,
    ConfigurationError,
    ElementError,
    HandlerTimeout,
    VobizError,
)
from answerkit.recipes._targets import check_target, hold_targets
from answerkit.recipes._warm_agent import AgentSide, Whisper
from answerkit.recipes._warm_caller import CallerSide
from answerkit.recipes._warm_moves import FallbackMove, MoveInFlight, surely_not_applied
from answerkit.recipes._warm_outcome import WarmOutcome as WarmOutcome
from answerkit.recipes._warm_state import (
    AGENT,
    AGENT_ENDED,
    ATTEMPT,
    CALLER_LEFT,
    CONTEXT,
    LAYOUT,
    at,
    key_of,
    latest_attempt,
    room_name,
)
from answerkit.transfer import recipe_move

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = QuietLog("answerkit")


@dataclass(frozen=True)
class WarmTransferStart:
    """A transfer under way: the caller is on hold and the agent's phone is ringing."""

    caller_uuid: str
    agent_request_uuid: str | None
    room: str


#: Other libraries' names, and what WarmTransfer takes for them.
_RENAMED = {
    "timeout": "use agent_timeout= (how long the agent's phone rings)",
    "hold_sound": "use hold_music=",
    "wait_sound": "use hold_music=",
    "music": "use hold_music=",
}


class WarmTransfer(CallerSide, AgentSide):
    """A warm transfer recipe mounted on ``flow`` under ``/{name}/...``."""

    @advise_keywords("WarmTransfer", _RENAMED)
    def __init__(
        self,
        flow: CallFlow,
        name: str = "warm",
        *,
        agent: str | Callable[[Mapping[str, str]], str],
        caller_id: str,
        fallback: str,
        announcement: str = "Please hold while we transfer your call.",
        hold_music: str | None = None,
        whisper: Whisper | None = None,
        accept_key: str = "1",
        agent_timeout: int = 30,
        decision_timeout: int = 10,
        goodbye: str = "Thank you for calling. Goodbye.",
        on_outcome: Callable[[str, WarmOutcome], None] | None = None,
    ) -> None:
        # isinstance first: len() of an int is a TypeError that names neither field nor fix.
        if (
            not isinstance(accept_key, str)
            or len(accept_key) != 1
            or accept_key not in "0123456789*#"
        ):
            raise ConfigurationError(
                f"WarmTransfer: accept_key must be one key as a string ('1', '#'), "
                f"got {accept_key!r}"
            )
        self.flow = flow
        self.name = name
        self.agent = agent
        if not isinstance(agent, str) and not callable(agent):
            # None (an environment variable not set) or an int passed, and every caller was
            # sent to the fallback as agent-unreachable.
            raise ConfigurationError(
                "WarmTransfer: agent must be a number or sip: URI as text ('+14155550142'), or "
                f"a function of the context returning one, got {shown(agent)} (an environment "
                "variable not set gives None)"
            )
        if on_outcome is not None and not callable(on_outcome):
            # A URL given here failed on every decision, and the CRM was never told.
            raise ConfigurationError(
                "WarmTransfer: on_outcome must be a function taking (caller_uuid, outcome), "
                f"got {shown(on_outcome)} (to tell a URL, post to it from such a function)"
            )
        try:
            check_phone("caller_id", caller_id)
            if isinstance(agent, str):
                check_destinations("agent", agent)
        except ArgumentError as exc:
            # Checked now: every agent call would be refused, each caller sent to the
            # fallback as agent-unreachable.
            raise ConfigurationError(f"WarmTransfer: {exc}") from None
        _check_settings(announcement, hold_music, whisper, agent_timeout, decision_timeout, goodbye)
        if not isinstance(fallback, str) or not fallback:
            # Told now, with the fix: a handler here failed at mount as "leads nowhere: flow
            # has no route <function ...>".
            what = getattr(fallback, "__qualname__", None) if callable(fallback) else None
            raise ConfigurationError(
                "WarmTransfer: fallback must be the name of a route of the flow (the caller "
                "is moved there with the Transfer API, which needs a URL), got "
                + (f"the handler {what}: pass its route's name" if what else shown(fallback))
            )
        self.caller_id = caller_id
        self.fallback = fallback
        self.announcement = announcement
        self.hold_music = hold_music
        self.whisper = whisper
        self.accept_key = accept_key
        self.agent_timeout = agent_timeout
        self.decision_timeout = decision_timeout
        self.goodbye = goodbye
        #: ``on_outcome(caller_uuid, outcome)``, each time the outcome is recorded or
        #: changes (a CRM told "accepted"). It runs inside a webhook: keep it quick.
        self.on_outcome = on_outcome
        self._moves = FallbackMove(
            flow, fallback, f"{name}_landing", self._state, self._tell_outcome
        )
        self.routes = {
            "hold": f"{name}_hold",
            "music": f"{name}_music",
            "room": f"{name}_room",
            "agent": f"{name}_agent",
            "choice": f"{name}_agent_choice",
            "agent_status": f"{name}_agent_status",
            "landing": f"{name}_landing",
        }
        r = self.routes
        flow.add_route(f"/{name}/hold", self._hold, name=r["hold"])
        # The wait sound is the same for every caller, every time: no replay record, so
        # that it plays on while the state store is down (not the apology document).
        flow.add_route(
            f"/{name}/music", self._music, name=r["music"], replay_check=False, sound=True
        )
        flow.add_route(f"/{name}/room", self._room_event, name=r["room"], status_callback=True)
        flow.add_route(f"/{name}/agent", self._agent_answer, name=r["agent"])
        flow.add_route(f"/{name}/agent/choice", self._agent_choice, name=r["choice"])
        flow.add_route(
            f"/{name}/agent/status",
            self._agent_status,
            name=r["agent_status"],
            status_callback=True,
        )
        flow.add_route(f"/{name}/landing", self._moves.landing, name=r["landing"])
        # Every route of it is a step: a caller reaches them by a transfer, an agent by its call.
        flow._inner_paths.update(
            f"/{name}{part}" for part in ("/hold", "/agent", "/agent/choice", "/landing")
        )
        flow._recipe_paths.update(
            f"/{name}{part}"
            for part in ("/hold", "/music", "/room", "/agent", "/agent/choice", "/agent/status",
                         "/landing")
        )  # fmt: skip
        hold_targets(flow, [self.fallback])
        flow.add_check(self._validate)
        flow.add_hangup_listener(self._on_hangup)

    # -- starting -----------------------------------------------------------------------

    def room_for(self, caller_uuid: str, attempt: int | None = None) -> str:
        """The conference room of one transfer attempt (by default the caller's latest).

        One room per attempt: an earlier attempt's agent who accepts late joins a room of
        their own, never the caller's current one.
        """
        if attempt is None:
            attempt = latest_attempt(self._state(caller_uuid))
        return room_name(self.name, caller_uuid, attempt)

    def __repr__(self) -> str:
        agent = getattr(self.agent, "__qualname__", None) or repr(self.agent)
        return (
            f"WarmTransfer(flow={self.flow.name!r}, name={self.name!r}, agent={agent}, "
            f"fallback={self.fallback!r})"
        )

    def start(
        self, caller_uuid: str, context: Mapping[str, object] | None = None
    ) -> WarmTransferStart | None:
        """Put the caller on hold (Transfer API) and call the agent.

        ``context`` (a CRM record, say) is kept as text, ``str()`` of each key and value,
        for the whisper and for ``agent`` when it is a function.

        Returns None when the caller's call has already ended (nothing was started).
        """
        # Checked before an attempt is numbered and recorded: '' got an 'agent-unreachable'
        # outcome and a move to the fallback that failed in a thread.
        check_call_uuid(caller_uuid, transfer=True)
        if context is not None and not callable(getattr(context, "items", None)):
            # Checked before anything is recorded or sent: a str's .items() failed after
            # the attempt was numbered. Anything with items() passes, as before.
            raise ArgumentError(
                f"WarmTransfer.start: context must be a mapping such as {{'topic': ...}}, "
                f"got {type(context).__name__} {shown(context)}",
                field="context",
            )
        state = self._state(caller_uuid)
        # A new attempt number first: from here on the callbacks of an earlier attempt
        # (whose URLs carry its number) are stale and decide nothing for this one. Nothing
        # to clear: the new attempt's record is under keys of its own (see at()), which a
        # late callback of the earlier one never writes.
        attempt = state.incr(ATTEMPT)
        # Marked before any URL of the attempt goes out: its record is under numbered keys
        # (an attempt begun by an earlier version is read under the bare ones, numbered()).
        state[at(LAYOUT, attempt)] = True
        previous = attempt - 1 if attempt > 1 else None  # 1: a transfer before attempts
        previous_agent = self._agent_of(state, previous)
        if state.get(key_of(state, AGENT_ENDED, previous)):
            previous_agent = None  # its Hangup webhook came: nothing to hang up
        ctx = {str(k): str(v) for k, v in (context or {}).items()}
        state[CONTEXT] = ctx
        ids = {"xfer": caller_uuid, "attempt": attempt}
        sent = held = timed_out = False
        # One try from the hold transfer to the agent's call: the deadline (SIGALRM) can
        # strike on any line, and one between the two (outside both tries) left the caller
        # on hold with no agent called and nothing owed.
        try:
            sent = True
            with recipe_move():  # the recipe's own hold route, a step no one else sends to
                moved = self.flow.try_transfer(caller_uuid, aleg=self.routes["hold"], params=ids)
            held = True
            if moved is None:
                # Ended, or not answered yet (an inbound call rings through its answer
                # webhook): nothing started, so its Hangup decides no "abandoned" for it.
                state[key_of(state, CALLER_LEFT, attempt)] = True
                log.info(
                    "warm transfer: caller %s is not live (ended, or not answered yet: start "
                    "from a later webhook, such as a Gather's action); not calling the agent",
                    caller_uuid,
                )
                return None
            return self._call_agent(caller_uuid, attempt, ctx)
        except HandlerTimeout as exc:
            timed_out = True  # no REST call past the deadline: the earlier agent stays
            if sent and (held or not surely_not_applied(exc)):
                # The caller is on hold, or may be: unless the agent was called (then the
                # agent's callbacks decide), the fallback is owed. Also when _call_agent
                # owed it already: the decision is taken once. (The hold transfer refused
                # unsent, LateTransferRefused: the caller is where they were.)
                self._owe_fallback_later(caller_uuid, attempt, unless_called=True)
            raise
        except Exception as exc:
            # A timeout, a 5xx: the caller may be on hold, where no agent will come.
            # (Refused, or never sent: they are where they were.) After the hold, an error
            # of _call_agent's own handling, which owed what it could.
            if not held and not surely_not_applied(exc):
                self._owe_fallback_later(caller_uuid, attempt)
            raise
        finally:
            if previous_agent and not timed_out:
                # The earlier attempt's agent would otherwise stay: in the old room, or in
                # the whisper, where a stale accept can no longer connect anyone. After the
                # caller is moved (hanging up an agent who is in the room with the caller
                # would end the room, and the caller's call with it) and after the new
                # agent is called: the hangup may be retried for seconds on a 5xx, and the
                # caller should not wait on hold for that before the new agent rings.
                self._hang_up_quietly(str(previous_agent))

    def _owe_fallback_later(
        self, caller_uuid: str, attempt: int, *, unless_called: bool = False
    ) -> None:
        """The caller is on hold, or maybe on the way there (the hold transfer's outcome is
        unknown), and no agent will be called: the move to the fallback is owed. A webhook
        past its deadline makes no REST call, and the room may send no callback again (the
        caller's ConferenceEnter may have come), so a thread of its own makes the move once
        the webhook has answered. ``unless_called``: not when make-call gave the agent's
        request (that agent's callbacks decide)."""
        # Not cut short by the deadline's later alarms: a decision recorded without its
        # debt would leave nothing to move the caller.
        with deadline_grace(), contextlib.suppress(Exception):
            if unless_called and self._state(caller_uuid).get(at(AGENT, attempt)):
                return
            if self._decide(caller_uuid, "agent-unreachable", attempt, move_now=False):
                self._moves.settle_later(caller_uuid)

    def _call_agent(
        self, caller_uuid: str, attempt: int, ctx: Mapping[str, str]
    ) -> WarmTransferStart:
        ids = {"xfer": caller_uuid, "attempt": attempt}
        try:
            destination = self.agent(ctx) if callable(self.agent) else self.agent
            created = self.flow.client.make_call(
                self.caller_id,
                destination,
                self.flow.url_for(self.routes["agent"], **ids),
                hangup_url=self.flow.url_for(self.routes["agent_status"], **ids),
                ring_timeout=self.agent_timeout,
            )
        except HandlerTimeout:
            self._owe_fallback_later(caller_uuid, attempt)  # the caller is on hold already
            raise
        except Exception as exc:
            # The caller is on hold already: whatever keeps the agent from being called (the
            # API, a number make_call refuses, the agent function failing) must send them
            # on to the fallback, or they would wait in a room nobody starts.
            log.warning(
                "warm transfer: could not call the agent for %s: %s: %s",
                caller_uuid,
                type(exc).__name__,
                exc,
                exc_info=not isinstance(exc, (VobizError, ArgumentError)),
            )
            if not isinstance(exc, (VobizError, ArgumentError)):
                self._report(exc)  # a bug in the agent function: the flow's error hook hears
            with contextlib.suppress(MoveInFlight):  # another webhook is moving them
                self._decide(caller_uuid, "agent-unreachable", attempt)
            return WarmTransferStart(caller_uuid, None, room_name(self.name, caller_uuid, attempt))
        self._state(caller_uuid)[at(AGENT, attempt)] = created.request_uuid
        room = room_name(self.name, caller_uuid, attempt)
        return WarmTransferStart(caller_uuid, created.request_uuid, room)

    def _report(self, exc: BaseException) -> None:
        """Hand an error of the app's own code (the agent function) to the flow's
        ``on_error`` hook, as a handler's error would be; there is no call to pass."""
        try:
            # The dispatcher's hook: what the flow was given, or a test harness's tap.
            hook = self.flow.dispatcher().on_error
        except Exception:
            hook = self.flow.on_error
        if hook is None:
            return
        try:
            hook(exc, None, self.routes["agent"])
        except Exception:
            log.exception("warm transfer: the on_error hook itself failed")

    def _validate(self, flow: CallFlow) -> None:
        # The hold, whisper and room URLs are the flow's: without a public URL start()
        # would fail on every call, so the recipe fails when mounted instead.
        try:
            flow.url_for(self.routes["hold"])
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"WarmTransfer {self.name!r} cannot build its URLs: {exc}"
            ) from None
        where = f"WarmTransfer {self.name!r}"
        try:
            check_target(flow, where, "fallback", self.fallback, event="Transfer")
        except ConfigurationError:
            # The landing asks Vobiz to fetch a fallback that takes no transfer itself.
            check_target(flow, where, "fallback", self.fallback, event="Redirect")
        flow.transfers.warn_without_client(f"WarmTransfer {self.name!r}")


_ANY_URL = "https://example.com/"  # stands in for the recipe's own URLs, unknown when made


def _check_settings(
    announcement: str,
    hold_music: str | None,
    whisper: Whisper | None,
    agent_timeout: int,
    decision_timeout: int,
    goodbye: str,
) -> None:
    """Refuse, when the recipe is made, a setting every transfer would trip over later: the
    documents it goes into are tried out now, as IVRMenu's are."""
    if not isinstance(agent_timeout, int) or isinstance(agent_timeout, bool) or agent_timeout <= 0:
        raise ConfigurationError(
            f"WarmTransfer: agent_timeout must be the seconds the agent's phone rings, a whole "
            f"number > 0, got {agent_timeout!r}"
        )
    if whisper is not None and not isinstance(whisper, str) and not callable(whisper):
        raise ConfigurationError(
            f"WarmTransfer: whisper must be text or a function of the context returning "
            f"text, got {whisper!r}"
        )
    # The whisper's Gather: its executionTimeout is the agent's time to decide.
    tried: list[tuple[str, Callable[[], object]]] = [
        ("announcement", lambda: Speak(announcement)),
        ("goodbye", lambda: Speak(goodbye)),
        ("decision_timeout", lambda: Gather(action=_ANY_URL, execution_timeout=decision_timeout)),
    ]
    if isinstance(whisper, str):
        tried.append(("whisper", lambda: Speak(whisper)))
    if hold_music:  # "" is unset, as it always was (hold_music=os.environ.get(..., ""))
        tried.append(("hold_music", lambda: Play(hold_music, loop=0)))
    for name, build in tried:
        try:
            build()
        except (ElementError, TypeError) as exc:
            hint = (
                " (the URL of an audio file the caller hears on hold)"
                if name == "hold_music"
                else ""
            )
            raise ConfigurationError(f"WarmTransfer: {name}: {exc}{hint}") from None
