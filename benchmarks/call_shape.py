"""A diagnostic builder for bench_xml: the floor's own f-strings inside classes that are
called exactly as answerkit's are.

Each class here takes the very parameters of its answerkit namesake (copied from
``inspect.signature``, so the two stay in step) and checks nothing: its constructor renders
its element with the floor's escaping, and ``Response.to_xml`` joins the children. What it
costs over the floor is what CPython charges for building objects with this API (a class
call, binding up to 17 keyword-only parameters, one instance per element): the part of
answerkit's cost that no check, memo or rendering trick can remove. bench_xml reports it
next to answerkit, so a target can be read against it.
"""

from __future__ import annotations

import inspect
from operator import attrgetter
from typing import Any

import answerkit

DECL = '<?xml version="1.0" encoding="UTF-8"?>'


_x_of = attrgetter("_x")  # a child's rendering: join(map(...)) runs in C, no frame per call


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc_attr(s: str) -> str:
    return _esc(s).replace('"', "&quot;")


def _params_of(real: type) -> str:
    """The parameter list of ``real.__init__`` as source text, without annotations."""
    out: list[str] = []
    star = False
    params = list(inspect.signature(real.__init__).parameters.values())  # type: ignore[misc]
    for i, p in enumerate(params):
        if p.default is not inspect.Parameter.empty and p.default is not None:
            raise ValueError(f"{real.__name__}.{p.name}: only None defaults are copied")
        if p.kind is p.VAR_POSITIONAL:
            out.append(f"*{p.name}")
            star = True
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                out.append("*")
                star = True
            out.append(f"{p.name}=None")
        elif p.kind is p.VAR_KEYWORD:
            out.append(f"**{p.name}")
        else:
            out.append(p.name if p.default is inspect.Parameter.empty else f"{p.name}=None")
        last_positional_only = p.kind is p.POSITIONAL_ONLY and (
            i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY
        )
        if last_positional_only:
            out.append("/")
    return ", ".join(out)


def _shaped(real: type, body: str, slots: tuple[str, ...]) -> type:
    """A class named after ``real`` whose ``__init__`` has its parameters and runs ``body``."""
    namespace: dict[str, Any] = {"_esc": _esc, "_esc_attr": _esc_attr, "_x_of": _x_of}
    # Compiled from text: a def is the only way to get a plain function with these parameters
    # (a *args/**kwargs wrapper would bind differently, and cost differently).
    exec(f"def __init__({_params_of(real)}):\n    {body}", namespace)
    return type(real.__name__, (), {"__slots__": slots, "__init__": namespace["__init__"]})


Speak = _shaped(answerkit.Speak, 'self._x = f"<Speak>{_esc(text)}</Speak>"', ("_x",))
Number = _shaped(answerkit.Number, 'self._x = f"<Number>{_esc(number)}</Number>"', ("_x",))
Hangup = _shaped(answerkit.Hangup, 'self._x = "<Hangup/>"', ("_x",))
Gather = _shaped(
    answerkit.Gather,
    'self._x = (f\'<Gather action="{_esc_attr(action)}" inputType="{input_type}" '
    "numDigits=\"{num_digits}\">' + ''.join(map(_x_of, children)) + '</Gather>')",
    ("_x",),
)
Dial = _shaped(
    answerkit.Dial,
    "self._x = (f'<Dial callerId=\"{_esc_attr(caller_id)}\">' "
    "+ ''.join(map(_x_of, children)) + '</Dial>')",
    ("_x",),
)


class Response(_shaped(answerkit.Response, "self._children = children", ("_children",))):  # type: ignore[misc]
    __slots__ = ()

    def to_xml(self) -> str:
        body = "".join(map(_x_of, self._children))
        return f"{DECL}<Response>{body}</Response>"
