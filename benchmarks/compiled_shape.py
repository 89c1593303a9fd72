"""A diagnostic for bench_xml: call_shape.py's builder compiled to C with mypyc.

call_shape.py shows what CPython charges for building objects with answerkit's API, with
no checks at all. This compiles the same classes (the same parameters, copied from
answerkit's signatures; the same f-strings) with mypyc, the compiler mypy ships, so the
class calls, the keyword binding and the attribute stores run as C. What it costs over the
floor is the least any builder with this API could cost, short of not being called like
one. bench_xml reports it when the compile works (mypy from the ``dev`` extra and a C
compiler); otherwise the row is left out.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from types import ModuleType

import answerkit
from benchmarks.call_shape import _params_of

_MODULE = "answerkit_compiled_shape"

_SOURCE = """
from __future__ import annotations

DECL = '<?xml version="1.0" encoding="UTF-8"?>'


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _esc_attr(s: str) -> str:
    return _esc(s).replace('"', "&quot;")


class El:
    _x: str


class Speak(El):
    def __init__({Speak}) -> None:
        self._x = f"<Speak>{{_esc(str(text))}}</Speak>"


class Number(El):
    def __init__({Number}) -> None:
        self._x = f"<Number>{{_esc(str(number))}}</Number>"


class Hangup(El):
    def __init__({Hangup}) -> None:
        self._x = "<Hangup/>"


class Gather(El):
    def __init__({Gather}) -> None:
        self._x = (
            f'<Gather action="{{_esc_attr(str(action))}}" inputType="{{input_type}}" '
            f'numDigits="{{num_digits}}">' + "".join([c._x for c in children]) + "</Gather>"
        )


class Dial(El):
    def __init__({Dial}) -> None:
        self._x = (
            f'<Dial callerId="{{_esc_attr(str(caller_id))}}">'
            + "".join([c._x for c in children])
            + "</Dial>"
        )


class Response:
    def __init__({Response}) -> None:
        self._children = children

    def to_xml(self) -> str:
        return DECL + "<Response>" + "".join([c._x for c in self._children]) + "</Response>"
"""


def _typed(real: type) -> str:
    """``real.__init__``'s parameters as typed source: children are elements, the rest
    anything (None by default), as in call_shape."""
    out = []
    for p in _params_of(real).split(", "):
        if p.startswith("**"):
            out.append(f"{p}: object")
        elif p.startswith("*") and p != "*":
            out.append(f"{p}: El")
        elif p.endswith("=None"):
            out.append(f"{p[: -len('=None')]}: object = None")
        elif p in ("self", "*", "/"):
            out.append(p)
        else:
            out.append(f"{p}: object")
    return ", ".join(out)


def source() -> str:
    names = ("Speak", "Number", "Hangup", "Gather", "Dial", "Response")
    return _SOURCE.format(**{n: _typed(getattr(answerkit, n)) for n in names})


def build() -> tuple[ModuleType | None, str]:
    """The compiled module, or None and why not (no mypyc, no C compiler)."""
    work = tempfile.mkdtemp(prefix="answerkit-mypyc-")
    # Removed at exit: a loaded extension stays mapped after its file is gone.
    atexit.register(shutil.rmtree, work, True)
    path = os.path.join(work, f"{_MODULE}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(source())
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", f"{_MODULE}.py"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"mypyc could not run: {exc}"
    built = [n for n in os.listdir(work) if n.startswith(_MODULE) and n.endswith((".so", ".pyd"))]
    if done.returncode != 0 or not built:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"mypyc failed: {last[0]}"
    sys.path.insert(0, work)  # mypyc's runtime helpers sit beside the module
    spec = importlib.util.spec_from_file_location(_MODULE, os.path.join(work, built[0]))
    if spec is None or spec.loader is None:
        return None, "the compiled module did not load"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, "compiled with mypyc"
