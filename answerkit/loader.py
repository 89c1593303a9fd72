"""Finding the call flows in a user's application file or module (for the command line)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TextIO, TypeVar

from flask import Flask

from answerkit._local_run import local_run
from answerkit.app import ENV_AUTH_TOKEN, ENV_PUBLIC_URL, ENV_STATE_URL, CallFlow, flows_of
from answerkit.errors import ConfigurationError

#: Settings the local commands (call, check, routes) stand in when they are not set:
#: nothing they do leaves this machine, so no real token or address is needed, and state
#: lives in memory (no file left behind).
LOCAL_SETTINGS = {
    ENV_AUTH_TOKEN: "local-simulated-call-token",
    ENV_PUBLIC_URL: "https://voice.example.com",
    ENV_STATE_URL: "memory://",
}


@contextmanager
def local_settings(out: TextIO, what: str) -> Iterator[None]:
    """The environment with LOCAL_SETTINGS for the names not set, restored afterwards;
    says which were stood in (for ``what``) on ``out``."""
    missing = {k: v for k, v in LOCAL_SETTINGS.items() if not os.environ.get(k)}
    if missing:
        print(
            f"(not in the environment, stood in for {what} where the app does not set them "
            f"itself: {', '.join(missing)})",
            file=out,
        )
    os.environ.update(missing)
    try:
        # Their REST calls go to a local Vobiz API: a recipe's warning at mount that no
        # VOBIZ_AUTH_ID means failed transfers would be false here (see _local_run).
        with local_run():
            yield
    finally:
        for name in missing:
            os.environ.pop(name, None)


def load_module(target: str) -> ModuleType:
    """Import ``examples/ivr.py`` (a path), ``mypackage/`` (a package's directory) or
    ``package.module`` (a dotted name)."""
    path = Path(target)
    if path.is_dir() and (path / "__init__.py").is_file():
        return _import_from(path.resolve().parent, path.resolve().name)
    if target.endswith(".py") or path.exists():
        if not path.is_file():
            raise ConfigurationError(f"no such application file: {target}")
        folder, stem = path.resolve().parent, path.stem
        loaded = sys.modules.get(stem)
        if stem.isidentifier() and (loaded is None or _is_file_of(loaded, path)):
            # Under its own name, as `python -m`, gunicorn and its sibling modules know it:
            # a handlers.py doing `from myapp import flow` must get this very module, not
            # run myapp.py a second time (new CallFlow objects, routes declared twice). Run
            # afresh on each load all the same, as before: new flows with the settings now.
            name = stem
        else:  # a name no import can spell (my-app.py), or another module's (flask.py)
            name = f"answerkit_app_{stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(folder))
        spec.loader.exec_module(module)
        return module
    # As `python -m` and gunicorn do: a console script's sys.path lacks the current
    # directory, where `answerkit routes myapp` (or `myapp:app`) expects myapp.py to be.
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        # Only when the target itself is missing: a missing import inside the user's own
        # module is their code's error, and its traceback says where.
        if exc.name is None or not (target == exc.name or target.startswith(exc.name + ".")):
            raise
        raise ConfigurationError(
            f"no module named {target!r}: give the path of the application file "
            f"(app.py) or a module importable from here (check the directory and PYTHONPATH)"
        ) from None


def _import_from(folder: Path, name: str) -> ModuleType:
    # First on the path even when it is there already: another module of that name further
    # up would be imported instead.
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def _is_file_of(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == path.resolve()


def find_flows(target: str) -> list[CallFlow]:
    """The CallFlow objects defined at the top level of ``target`` (``file.py[:name]``)."""
    return load_target(target)[0]


def load_target(target: str) -> tuple[list[CallFlow], Flask | None]:
    """The flows of ``target`` and the user's own Flask app serving all of them, if any.

    ``FILE:VARIABLE`` names a CallFlow, or (as gunicorn's ``myapp:app``) the Flask app:
    then its flows are the top-level ones registered on it. The module is imported once:
    a second import would make new CallFlow objects.
    """
    module_part, _, attr = target.partition(":")
    if attr == "" and ":" not in target and "/" not in target and target.count(":") == 0:
        module_part = target
    module = load_module(module_part)
    # Each object once: a flow or an app bound to two names (application = app) is one.
    flows = _unique(v for v in vars(module).values() if isinstance(v, CallFlow))
    apps = _unique(v for v in vars(module).values() if isinstance(v, Flask))
    if attr:
        obj = getattr(module, attr, None)
        if isinstance(obj, CallFlow):
            return [obj], _serving_app(apps, [obj])
        if isinstance(obj, Flask):
            # Every flow registered on it: an app factory's too, which no top-level name holds.
            mounted = flows_of(obj)
            if not mounted:
                raise ConfigurationError(
                    f"{module_part}: the Flask app {attr!r} serves no CallFlow; register one "
                    "on it with flow.register(app)"
                )
            return mounted, obj
        raise ConfigurationError(f"{module_part} has no CallFlow or Flask app named {attr!r}")
    if not flows:
        # An app factory called at the top level (app = create_app()): its flows.
        served = [app for app in apps if flows_of(app)]
        if len(served) == 1:
            return flows_of(served[0]), served[0]
        raise ConfigurationError(
            f"{module_part} defines no CallFlow at its top level; name one with FILE:VARIABLE"
        )
    return flows, _serving_app(apps, flows)


_O = TypeVar("_O")


def _unique(objects: Iterable[_O]) -> list[_O]:
    """``objects`` in order, each once (by identity)."""
    seen: dict[int, _O] = {}
    for obj in objects:
        seen.setdefault(id(obj), obj)
    return list(seen.values())


def _serving_app(apps: list[Flask], flows: list[CallFlow]) -> Flask | None:
    """The one app that serves every flow: the user's routes, hooks and middleware with it."""
    serving = [app for app in apps if all(flow in flows_of(app) for flow in flows)]
    return serving[0] if len(serving) == 1 else None
