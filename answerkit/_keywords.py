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
import functools
import inspect
import re
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

_TAKES = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def advise_keywords(
    owner: str, renamed: Mapping[str, str] | None = None
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a function or method (``__init__`` too) so that a keyword it does not take
    raises :func:`unknown_keyword`'s TypeError, naming the one to write.

    The signature stays the function's own (``functools.wraps``, a ParamSpec): mypy checks
    calls and overrides against it, and ``inspect.signature(...).bind`` still refuses an
    unknown keyword. A call with known keywords costs one set test.
    """

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        known = frozenset(
            p.name for p in inspect.signature(func).parameters.values() if p.kind in _TAKES
        )

        @functools.wraps(func)
        def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            if not known.issuperset(kwargs):
                unknown = {k: v for k, v in kwargs.items() if k not in known}
                raise unknown_keyword(owner, func, unknown, renamed)
            return func(*args, **kwargs)

        return checked

    return decorate


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
