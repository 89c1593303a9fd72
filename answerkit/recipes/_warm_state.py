"""The record and URLs of a warm transfer's attempts (see :mod:`.warm_transfer`).

The state keys of a transfer's record, how each attempt's keys are named (keys of its own,
:func:`at`, or the bare ones of a transfer an earlier version began, :func:`numbered`),
and how an attempt number is read from a callback URL, written into the URLs and turned
into a room name. Kept apart from the recipe so that the naming rules, which must agree
across versions during a rolling deploy, sit together.
"""

from __future__ import annotations

from answerkit.request import CallRequest
from answerkit.state import CallState

DECIDED = "warm.decided"
OUTCOME = "warm.outcome"
AGENT = "warm.agent_uuid"
CONTEXT = "warm.context"
ATTEMPT = "warm.attempt"
JOINED = "warm.agent_joined"
RESCUED = "warm.rescued"
AGENT_CALL = "warm.agent_call_uuid"
CALLER_LEFT = "warm.caller_left"
AGENT_ENDED = "warm.agent_ended"
MOVE_OWED = "warm.move_owed"  # the caller is owed a move to the fallback (see _warm_moves)
LANDED = "warm.landed"  # the move whose landing webhook came: the caller reached it

#: Per attempt: written by start() as the attempt begins, so that its record is read under
#: numbered keys (see :func:`numbered`).
LAYOUT = "warm.layout"

#: The keys of an attempt's own record that its layout names (:func:`key_of`).
_RECORD = (DECIDED, OUTCOME, AGENT, AGENT_CALL, AGENT_ENDED, JOINED, RESCUED, CALLER_LEFT)


def at(key: str, attempt: object) -> str:
    """``key`` of one attempt (``warm.decided.2``): each attempt's record apart, so a late
    callback of an earlier attempt, which passed its check just before start() began a
    new one, writes nothing the new attempt reads. A transfer started before attempts
    (``attempt`` None) keeps the key itself, as that version wrote it."""
    if isinstance(attempt, int) and not isinstance(attempt, bool):
        return f"{key}.{attempt}"
    return key


def latest_attempt(state: CallState) -> int | None:
    """The caller's latest attempt (None: none numbered, a transfer from before attempts)."""
    value = state.get(ATTEMPT)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def numbered(state: CallState, attempt: object) -> bool:
    """Whether ``attempt``'s record is under keys of its own (``warm.decided.2``).

    The version before them (b912e1b^) already put ``attempt`` in its URLs, but kept the
    record of the latest attempt under the bare keys (``warm.decided`` an incr counter,
    ``warm.outcome``, ``warm.agent_call_uuid`` ...), cleared by each of its start()s. A
    transfer it began, met during a rolling deploy, must be read (and written) that way:
    read under numbered keys it looked undecided, and was decided a second time (the
    caller moved twice, the outcome told twice, the agent never hung up). This version's
    start() marks each attempt it begins (``LAYOUT``); an attempt with a numbered key of
    its record is one too (begun by b912e1b, which wrote no mark). The mark, rather than
    "the numbered key is missing": a new attempt's keys are all missing at first, and the
    bare keys may still hold an earlier version's attempt, which it would then inherit.
    """
    if not isinstance(attempt, int) or isinstance(attempt, bool):
        return False  # a transfer from before attempts: bare keys, as at() gives them
    return any(at(key, attempt) in state for key in (LAYOUT, *_RECORD))


def key_of(state: CallState, key: str, attempt: object) -> str:
    """``key`` of ``attempt``'s record as its layout names it (:func:`numbered`)."""
    return at(key, attempt) if numbered(state, attempt) else key


def attempt_of(call: CallRequest) -> int | None:
    """The transfer attempt a callback belongs to (0, never current, when unreadable;
    None when the URL has none: a transfer started by a version before attempts)."""
    given = call.query.get("attempt")
    if given is None:
        return None
    try:
        return int(given)
    except ValueError:
        return 0


def url_ids(caller_uuid: str, attempt: int | None) -> dict[str, str | int]:
    """The query parameters of an attempt's URLs (a legacy transfer's URLs keep none)."""
    ids: dict[str, str | int] = {"xfer": caller_uuid}
    if attempt is not None:
        ids["attempt"] = attempt
    return ids


def room_name(name: str, caller_uuid: str, attempt: int | None) -> str:
    # Attempt 1 (and a legacy transfer, without attempt) keeps the name earlier versions
    # gave the room: during a rolling deploy the caller's hold document and the agent's
    # accept may come from different versions, and both must name the same room.
    # Only a second start() for the same caller needs a room of its own.
    if attempt is None or attempt <= 1:
        return f"{name}-{caller_uuid}"
    return f"{name}-{caller_uuid}-{attempt}"
