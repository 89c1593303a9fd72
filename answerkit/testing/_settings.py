"""Checks of the testing tools' own settings (the simulator's and LocalVobiz's), so that a
bad one fails when given, naming it, rather than later or silently: ``max_steps=-1`` played
nothing, ``port=-1`` failed only at ``start()`` with an OverflowError from ``bind``."""

from __future__ import annotations

import math

from answerkit.errors import ConfigurationError


def positive_seconds(name: str, value: object) -> float:
    """``value`` as seconds above 0 (finite), or a ConfigurationError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    if not 0 < value < math.inf:  # NaN fails too
        raise ConfigurationError(f"{name} must be seconds above 0, got {value!r}")
    return float(value)


def step_limit(value: object) -> int:
    """``max_steps``: a whole number of steps, at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"max_steps must be a whole number of steps, at least 1 (the default is 200), "
            f"got {value!r}"
        )
    return value


def port_number(value: object) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigurationError(
            f"port must be a whole number from 0 (any free port) to 65535, got {value!r}"
        )
    return value
