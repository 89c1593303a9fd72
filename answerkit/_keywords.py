"""A keyword that a flow, a recipe or a transfer does not take: Python's own TypeError, with
the keyword to write instead.

Elements name the VobizXML attribute for a Plivo or TwiML one (``_tables.not_vobiz``); the
classes and methods around them get the same help here: the answerkit keyword for a Plivo
one (``IVRMenu(timeout=)`` is ``execution_timeout=``), snake_case for camelCase
(``callerId`` is ``caller_id``), else the nearest keyword it takes. Built only on the error
path: a call with known keywords never comes here.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping

_TAKES = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def unknown_keyword(
    owner: str,
    takes: Callable[..., object],
    given: Mapping[str, object],
    renamed: Mapping[str, str] | None = None,
) -> TypeError:
    """The TypeError for ``given``, keywords ``takes`` (a function or method) does not
    take, named after ``owner`` as Python names it (``IVRMenu``, ``CallFlow.transfer``);
    ``renamed`` maps another library's keywords to the advice for them."""
    name = next(iter(given))
    known = [
        p.name
        for p in inspect.signature(takes).parameters.values()
        if p.kind in _TAKES and p.name != "self"
    ]
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    advice = (renamed or {}).get(name) or (renamed or {}).get(snake)
    if advice is None and snake != name and snake in known:
        advice = f"write it in snake_case, {snake}="
    if advice is None:
        close = difflib.get_close_matches(snake, known, n=1)
        advice = f"did you mean {close[0]}=?" if close else "it is not one of them"
    return TypeError(
        f"{owner}() got an unexpected keyword argument {name!r}: {advice} "
        f"(it takes {', '.join(k + '=' for k in known)})"
    )
