"""Finding the call flows in a user's application file or module (for the command line)."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TextIO, TypeVar

from flask import Flask

from answerkit._flow_flask import flows_of
from answerkit._flow_settings import ENV_AUTH_TOKEN, ENV_PUBLIC_URL, ENV_STATE_URL
from answerkit._local_run import local_run
from answerkit.app import CallFlow
from answerkit.errors import AnswerkitError, ConfigurationError

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
    ``package.module`` (a dotted name).

    An error of the application's own code while it is imported (a SyntaxError, a missing
    import, a NameError) is a ConfigurationError that carries its traceback without
    answerkit's and importlib's frames: the command prints one message that starts with
    what it was doing and shows only the user's lines. answerkit's own errors (a CallFlow
    made with a bad setting) already say what to fix and pass as they are."""
    try:
        return _import_target(target)
    except AnswerkitError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"{target} failed while it was imported, in its own code:\n{_users_traceback(exc)}"
        ) from exc


#: Where the frames above a user's first one come from: this package, importlib (its frozen
#: bootstrap that runs the module, and import_module, for a module of a package or a
#: dotted name). Compared resolved, as a symlinked install reports its frames unresolved.
_LOADER_FOLDERS = tuple(
    str(Path(folder).resolve()) + os.sep
    for folder in (os.path.dirname(__file__), os.path.dirname(importlib.__file__))
)


def _users_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as Python prints it, from the application's first frame on: the
    loader's and importlib's frames above it go (a SyntaxError's own lines, file, caret and
    message stay: they are not frames), answerkit's frames below it stay, since an error
    raised inside answerkit is one to report with them."""
    shown = traceback.TracebackException.from_exception(exc)
    frames = list(shown.stack)
    while frames and (
        frames[0].filename.startswith("<frozen ")
        or str(Path(frames[0].filename).resolve()).startswith(_LOADER_FOLDERS)
    ):
        del frames[0]
    shown.stack = traceback.StackSummary.from_list(frames)
    return "".join(shown.format()).rstrip()


def _import_target(target: str) -> ModuleType:
    # Absolute but not resolved: a symlinked folder (a release directory) is imported from
    # where it is reached, as Python itself would.
    path = Path(os.path.abspath(target))
    if path.is_dir() and (path / "__init__.py").is_file():
        return _load_file(path / "__init__.py")
    if target.endswith(".py") or path.exists():
        if not path.is_file():
            raise ConfigurationError(f"no such application file: {target}")
        return _load_file(path)
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


#: The modules each application file's loads brought in, by the file's path: the next load
#: of the same file runs it afresh with them (see _load_file).
_LOADED_WITH: dict[Path, list[str]] = {}


def _load_file(file: Path) -> ModuleType:
    """The module of ``file`` (a package's ``__init__.py`` for the package), imported as
    Python would import it by name.

    A file of a package (a folder with ``__init__.py``) by its dotted name, with the folder
    above the outermost package first on the path: its relative imports work, as with
    `python -m package.module`. Any other file under its
    own name, its folder first: a handlers.py beside it doing `from myapp import flow`
    gets this very module, and does not run myapp.py a second time (new CallFlow objects,
    routes declared twice). A name another module has (sqlite3.py, calendar/, redis.py when
    redis is installed, flask.py) or no import can spell (my-app.py) is replaced by one of
    its own, and its folder goes last on the path, where it shadows nothing.

    A module the application imported itself is used as it is; one this function loaded
    before (or failed to) is run afresh, with the settings of now as each command
    expects, together with the modules of its folder that load imported, so that they
    hold the new module's objects."""
    for name in _LOADED_WITH.pop(file, []):
        sys.modules.pop(name, None)
    root, parts = _package_root(file)
    if parts and not _own_name(parts[0], root):
        root, parts = file.parent, [] if file.name == "__init__.py" else [file.stem]
    if file.name == "__init__.py" and not parts:  # a package whose name is another's
        parts = [file.parent.name]
        root = file.parent.parent
    dotted = ".".join(parts)
    known = sys.modules.get(dotted)
    if known is not None and _is_file_of(known, file):
        return known
    before = set(sys.modules)
    try:
        if len(parts) > 1 and _own_name(parts[0], root):
            # Only the folder above the package: Python never puts a package's own folder
            # on the path (its statistics.py would be every later `import statistics`).
            _put_first(root)
            return importlib.import_module(dotted)
        own = _own_name(dotted, root) and known is None
        name = dotted if own else f"answerkit_app_{dotted}"
        return _exec_file(file, name, first=own)
    finally:
        # Kept even when the load failed: the next one must run them afresh too.
        _LOADED_WITH[file] = [
            other
            for other in set(sys.modules) - before
            if _is_under(sys.modules[other], root) or other.startswith("answerkit_app_")
        ]


def _exec_file(file: Path, name: str, *, first: bool) -> ModuleType:
    """Run ``file`` as module ``name``; its folder goes first on the path when ``first``,
    else last."""
    inside = [str(file.parent)] if file.name == "__init__.py" else None
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=inside)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = file.parent.parent if inside else file.parent
    if first:
        _put_first(folder)
    elif str(folder) not in sys.path:
        sys.path.append(str(folder))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _put_first(folder: Path) -> None:
    """``folder`` on the path first, once."""
    text = str(folder)
    if text in sys.path:
        sys.path.remove(text)
    sys.path.insert(0, text)


def _package_root(file: Path) -> tuple[Path, list[str]]:
    """The folder to import ``file`` from, and its dotted name's parts: up through every
    folder with an ``__init__.py`` whose name an import can spell."""
    parts = [] if file.name == "__init__.py" else [file.stem]
    folder = file.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, parts


def _own_name(name: str, folder: Path) -> bool:
    """Whether a module ``name`` found in ``folder`` may be imported under that name: one
    an import can spell, that no other module has, imported or installed (a standard
    library module, redis), which would take its place for every later import."""
    if not name.isidentifier() or name in sys.stdlib_module_names:
        return False
    known = sys.modules.get(name)
    if known is not None:
        file = getattr(known, "__file__", None)
        return file is not None and Path(file).parent in (folder, folder / name)
    # Installed elsewhere? Asked of the path without the folder itself and the current
    # directory, where the application's own files are.
    here = {"", os.getcwd(), str(folder)}
    elsewhere = [p for p in sys.path if p not in here]
    try:
        return importlib.machinery.PathFinder.find_spec(name, elsewhere) is None
    except (ImportError, ValueError):
        return True


def _is_under(module: ModuleType, root: Path) -> bool:
    """Whether ``module`` was loaded from a file in ``root``'s tree, and is the
    application's: not an installed one (a virtualenv inside the project) nor answerkit."""
    file = getattr(module, "__file__", None)
    if file is None:
        return False
    path = Path(file).resolve()
    return path.is_relative_to(root.resolve()) and not any(
        path.is_relative_to(place) for place in _NOT_THE_APPS
    )


#: Where modules live that are never the application's own, though a project's folder may
#: hold them (a .venv, a checkout of answerkit): evicting them would make new classes.
_NOT_THE_APPS = tuple(
    {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    | {Path(__file__).resolve().parent}
)


def _is_file_of(module: ModuleType, path: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve() == path.resolve()


def build_app(flows: Sequence[CallFlow]) -> Flask:
    """One Flask app serving every flow (each at the prefix it was mounted with, if any)."""
    app = Flask("answerkit")
    for flow in flows:
        flow.register(app, getattr(flow, "_mount_prefix", None))
    return app


def find_flows(target: str) -> list[CallFlow]:
    """The CallFlow objects defined at the top level of ``target`` (``file.py[:name]``)."""
    return load_target(target)[0]


def load_target(target: str) -> tuple[list[CallFlow], Flask | None]:
    """The flows of ``target`` and the user's own Flask app serving all of them, if any.

    ``FILE:VARIABLE`` names a CallFlow, or (as gunicorn's ``myapp:app``) the Flask app:
    then its flows are all those registered on it. Without a name, the top-level flows, or
    all those of the one top-level app that serves them. The module is imported once: a
    second import would make new CallFlow objects.
    """
    module_part, _, attr = target.partition(":")
    # A server's address (with a scheme, or host:port) where an app is expected.
    # (A factory's arguments may hold a URL: create_app(public_url='https://...').)
    if "://" in target.partition("(")[0] or (attr.isdigit() and Path(module_part).suffix != ".py"):
        url = target if "://" in target else f"http://{target}"
        raise ConfigurationError(
            f"{target!r} is a server's address; this command takes an app: FILE.py, MODULE "
            "or FILE:VARIABLE (as gunicorn's myapp:app). To play calls against a running "
            f"server, use CallSimulator({url!r}, auth_token=..., public_url=...)"
        )
    if attr == "" and ":" not in target and "/" not in target and target.count(":") == 0:
        module_part = target
    # Logging is set up after the import: an app that sets it up itself (basicConfig at
    # INFO, as the README and the examples do) keeps it; set up first, ours made theirs a
    # no-op and their INFO lines were dropped under answerkit run. answerkit's own warnings
    # while the app imports are shown meanwhile by a handler of the import's own.
    with _import_warnings_shown():
        module = load_module(module_part)
    default_logging()
    # Each object once: a flow or an app bound to two names (application = app) is one.
    flows = _unique(v for v in vars(module).values() if isinstance(v, CallFlow))
    apps = _unique(v for v in vars(module).values() if isinstance(v, Flask))
    if attr:
        obj = (
            _factory_made(module_part, module, attr) if "(" in attr else getattr(module, attr, None)
        )
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
    own = _serving_app(apps, flows)
    if own is None:
        _refuse_partly_served(module_part, module, apps, flows)
    # Every flow the app serves: one its factory made beside the top-level ones too.
    return (flows, None) if own is None else (flows_of(own), own)


def _refuse_partly_served(
    module_part: str, module: object, apps: list[Flask], flows: list[CallFlow]
) -> None:
    """Refuse a module whose Flask apps serve its flows, but no one app all of them: an app
    of the flows alone (what would run otherwise) is not what gunicorn serves. A flow no
    app serves is most likely a ``flow.register(app)`` forgotten (a check through the flows
    alone passed routes production answers 404); flows split across several apps, or
    every flow on two apps, leave which one to serve to be named."""
    serving = [app for app in apps if any(flow in flows_of(app) for flow in flows)]
    if not serving:
        return  # flows alone: an app of them is what there is to serve
    names = {id(v): k for k, v in vars(module).items() if isinstance(v, (Flask, CallFlow))}

    def named(obj: Flask | CallFlow) -> str:
        return names.get(id(obj), obj.name)

    left = [flow for flow in flows if not any(flow in flows_of(app) for app in apps)]
    if left and len(serving) == 1:
        app_name = named(serving[0])
        shown = ", ".join(repr(named(flow)) for flow in left)
        raise ConfigurationError(
            f"{module_part}: the Flask app {app_name!r} serves some of the module's flows but "
            f"not {shown} (a flow.register({app_name}) forgotten?), so what gunicorn serves "
            f"differs from what would run here. Register every flow on it, or name what to "
            f"run: {module_part}:{app_name} (the flows it serves) or "
            f"{module_part}:{named(left[0])} (that flow alone)"
        )
    each = "; ".join(
        f"{module_part}:{named(app)} serves "
        + ", ".join(repr(named(flow)) for flow in flows if flow in flows_of(app))
        for app in serving
    )
    unserved = (
        "; no app serves " + ", ".join(repr(named(flow)) for flow in left) + " (a "
        "flow.register(app) forgotten?)"
        if left
        else ""
    )
    raise ConfigurationError(
        f"{module_part} has several Flask apps and no one of them serves every flow the "
        f"module declares, so which one gunicorn serves is yours to say: name it ({each}"
        f"{unserved})"
    )


def _factory_made(module_part: str, module: object, attr: str) -> object:
    """What ``FACTORY(...)`` makes, as gunicorn reads ``myapp:create_app()``: a function of
    the module, called with literal arguments (``create_app('/voice', debug=False)``)."""
    try:
        call = ast.parse(attr.strip(), mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError("not a call of a name")
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        if len(kwargs) != len(call.keywords):
            raise ValueError("** arguments")
    except (SyntaxError, ValueError):
        raise ConfigurationError(
            f"{module_part}:{attr}: write a factory's call as gunicorn takes it, a function "
            "of the module with literal arguments (text, numbers, True, False, None): "
            "create_app() or create_app('/voice', debug=False)"
        ) from None
    factory = getattr(module, call.func.id, None)
    if not callable(factory):
        raise ConfigurationError(f"{module_part} has no function named {call.func.id!r}")
    try:
        with _import_warnings_shown():
            return factory(*args, **kwargs)
    except AnswerkitError:
        raise
    except Exception as exc:  # told as an import's failure is: the user's own lines
        raise ConfigurationError(
            f"{module_part}:{attr} failed, in its own code:\n{_users_traceback(exc)}"
        ) from exc


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


_FORMAT = "%(levelname)s %(name)s: %(message)s"


def default_logging() -> None:
    """A handler to stderr, unless logging is set up already (by the app). The root's level
    is left as it is, and the handler passes WARNING and above, and the development
    server's own lines (werkzeug's, at INFO): an app that set INFO on the root and its own
    handler on its own logger does not see its lines twice, and werkzeug, finding a
    handler for its INFO lines, adds none of its own (every error line was doubled)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(_warnings_and_server)
        root.addHandler(handler)


def _warnings_and_server(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.startswith("werkzeug")


@contextmanager
def _import_warnings_shown() -> Iterator[None]:
    """Warnings while the app imports (answerkit's: a plain-http public_url, say) that no
    handler takes are shown as the command shows them once logging is set up, not bare:
    Python's last resort is swapped for the time of the import. Whatever the app sets up
    meanwhile (a file handler, dictConfig) takes them as it would, untouched."""
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(_FORMAT))
    last_resort = logging.lastResort
    logging.lastResort = handler
    try:
        yield
    finally:
        logging.lastResort = last_resort
