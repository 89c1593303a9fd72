"""How a test scripts a call: the caller's inputs, the dial outcomes, the calls it expects.

``digits`` and ``speech`` feed a call's Gathers in order, ``dial`` gives one outcome
per Dial (:data:`DIAL_OUTCOMES`), and an :class:`OutboundScript` (from
:meth:`CallSimulator.expect_outbound`) waits for the next call the flow places to its
number. Everything is checked when the test writes it, so a typo fails at the
``call()`` line rather than halfway through the call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from answerkit.errors import ConfigurationError

__all__ = [
    "DIAL_OUTCOMES",
    "DIGIT_KEYS",
    "RECORD_ENDINGS",
    "RINGS_OUT",
    "Inputs",
    "OutboundScript",
    "check_digits",
    "check_outcome",
    "check_speech",
    "dial_outcomes",
    "parse_dials",
    "parse_digits",
    "parse_records",
    "parse_speech",
    "take_script",
]

#: A scripted input: ``"1,2"``, or a list with one item per Gather (None: no input).
Inputs = str | Sequence[str | None] | None
DIGIT_KEYS = frozenset("0123456789*#")
#: What a scripted B-leg may do. ``bridge``: answers and stays connected (the caller's
#: call blocks) until a transfer, a hang-up or :meth:`SimulatedCall.end_bridge`.
#: ``cancel``: the caller hangs up while the dialled side rings (DialStatus=cancel).
#: ``timeout``: rings out as ``no-answer`` does, reported as DialStatus=timeout (spec §2.5
#: lists both values without saying when each is sent: a flow must handle both).
DIAL_OUTCOMES = ("answer", "bridge", "busy", "no-answer", "timeout", "failed", "cancel")
#: Outcomes of a B-leg that rings until the Dial's timeout.
RINGS_OUT = frozenset(("no-answer", "timeout"))


def dial_outcomes(outcome: Any, count: int) -> list[str]:
    """One outcome per dialled target: a word applies to all (``answer``: the first wins).

    A bad outcome raises :class:`~answerkit.errors.ConfigurationError`.
    """
    allowed = ", ".join(DIAL_OUTCOMES)
    if isinstance(outcome, str):
        items = [outcome] * count
    elif isinstance(outcome, (list, tuple)):
        items = [o.strip() if isinstance(o, str) else repr(o) for o in outcome]
        items += ["no-answer"] * max(0, count - len(outcome))
    else:
        raise ConfigurationError(
            f"dial outcome must be one of {allowed}, or a list of them (one per target), "
            f"got {outcome!r}"
        )
    for item in items:
        if item not in DIAL_OUTCOMES:
            raise ConfigurationError(f"dial outcome must be one of {allowed}, got {item!r}")
    if "cancel" in items and set(items) - {"cancel", *RINGS_OUT}:
        raise ConfigurationError(
            f"dial outcome 'cancel' is the caller hanging up while the whole Dial rings: "
            f"give it alone (dial='cancel'), not beside {sorted(set(items) - {'cancel'})}"
        )
    return items[:count]


def parse_dials(dial: Sequence[Any] | str | None) -> list[Any]:
    """``"answer,busy"`` or a list (an item may be a list: one outcome per target), checked.

    Split and stripped as ``digits`` and ``speech`` are: anything else (a number, bytes)
    raises :class:`~answerkit.errors.ConfigurationError`.
    """
    items = _words("dial", dial, "answer,busy")
    for item in items:
        dial_outcomes(item, len(item) if isinstance(item, (list, tuple)) else 1)
    return items


def _words(name: str, script: object, example: str) -> list[Any]:
    """A scripted list of words (``"a,b"`` or a list), each string item stripped."""
    if script is None:
        return []
    return [
        item.strip() if isinstance(item, str) else item
        for item in _script_items(name, script, example, "")
    ]


#: How the caller ends each Record: after the message, silence until ``timeout`` (or
#: ``maxLength``), the ``finishOnKey`` key, or hanging up.
RECORD_ENDINGS = ("silence", "key", "hangup")


def parse_records(record: Sequence[str] | str | None) -> list[str]:
    """``"key,hangup"`` or a list: one ending per Record, checked."""
    items = _words("record", record, "key,hangup")
    for item in items:
        if item not in RECORD_ENDINGS:
            raise ConfigurationError(
                f"record ending must be one of {', '.join(RECORD_ENDINGS)}, got {item!r}"
            )
    return items


def check_digits(digits: str | None) -> str | None:
    """Validate one scripted input: None, ``""`` and ``"-"`` mean no input.

    Anything but keys raises :class:`~answerkit.errors.ConfigurationError`.
    """
    if digits is None or digits in ("", "-"):
        return None
    if not isinstance(digits, str) or not set(digits) <= DIGIT_KEYS:
        raise ConfigurationError(
            f"digits must hold only the keys 0-9, * and # (- or empty for no input), got {digits!r}"
        )
    return digits


def parse_digits(digits: str | Sequence[str | None] | None) -> list[str | None]:
    """``"1,2"`` or ``["1", None]`` -> the scripted Gather inputs (``-``/None: no input)."""
    if digits is None:
        return []
    items = _script_items("digits", digits)
    return [check_digits(item.strip() if isinstance(item, str) else item) for item in items]


def _script_items(
    name: str,
    script: object,
    example: str = "1,2",
    empty: str = " (None or '-' for no input)",
) -> list[Any]:
    """A scripted input's items: a string split on commas, a list or tuple item by item."""
    if isinstance(script, str):
        return script.split(",")
    if isinstance(script, (list, tuple)):
        return list(script)
    raise ConfigurationError(
        f"{name} must be text such as {example!r} or a list of texts{empty}, got {script!r}"
    )


def parse_speech(speech: str | Sequence[str | None] | None) -> list[str | None]:
    """``"sales,yes"`` or a list -> the scripted speech inputs (``-``/None: nothing said).

    A string is split on commas (the ``--speech`` contract of ``answerkit call``); a
    list or tuple gives one input per item, taken whole, so ``["sales, please"]`` is
    one utterance with its comma. Anything but text raises ConfigurationError.
    """
    if speech is None:
        return []
    return [check_speech(item) for item in _script_items("speech", speech)]


def check_speech(speech: object) -> str | None:
    """One utterance, stripped (None, empty or ``-``: nothing said); ConfigurationError
    for anything but text."""
    if speech is not None and not isinstance(speech, str):
        raise ConfigurationError(
            f"speech must be text, or a list of texts (None or - for nothing said), got {speech!r}"
        )
    return None if speech is None or speech.strip() in ("", "-") else speech.strip()


@dataclass
class OutboundScript:
    """How the next call the flow places to ``to`` (None: any number) goes."""

    to: str | None
    outcome: str
    digits: list[str | None]
    speech: list[str | None]
    dial: list[Any]
    max_steps: int


def check_outcome(outcome: str) -> None:
    """Whether the called party of an outbound call answers; anything else is a typo."""
    if outcome not in ("answer", "busy", "no-answer", "failed"):
        raise ConfigurationError(
            f"outcome must be answer, busy, no-answer or failed, got {outcome!r}"
        )


def take_script(scripts: list[OutboundScript], to: str) -> OutboundScript | None:
    """The oldest script for a call to ``to``, taken off ``scripts`` (each is used once)."""
    for i, script in enumerate(scripts):
        if script.to is None or _digits_only(script.to) == _digits_only(to):
            return scripts.pop(i)
    return None


def _digits_only(number: str) -> str:
    return number.lstrip("+")
