"""The record and URLs of a warm transfer's attempts (see :mod:`.warm_transfer`).

The state keys of a transfer's record, and how an attempt number is read from a callback
URL, written into the URLs and turned into a room name. Kept apart from the recipe so that
the naming rules, which must agree across versions during a rolling deploy, sit together.
"""

from __future__ import annotations

from answerkit.request import CallRequest

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
