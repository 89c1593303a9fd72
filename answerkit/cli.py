"""The ``answerkit`` command: run, routes, check, call, demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from answerkit._version import installed_version
from answerkit.app import CallFlow
from answerkit.check import check_flow
from answerkit.errors import AnswerkitError
from answerkit.loader import build_app, default_logging, load_target, local_settings


def _print_routes(flows: Sequence[CallFlow]) -> None:
    for flow in flows:
        print(f"flow {flow.name}  (verification {'on' if flow.verify else 'OFF'})")
        if not flow.public_url:
            print(
                "  (no public URL: paths only; set ANSWERKIT_PUBLIC_URL, or public_url=, to "
                "the https address Vobiz reaches this app at)"
            )
        # Without a public URL the path is all there is to show, and it includes the
        # prefix the flow is mounted at (the URL Vobiz must be given).
        base = (flow.public_url or "") + (flow._mount_prefix or "")
        # The names' column as wide as the longest (a TransferTrigger's pushed the rest out).
        width = max(
            [20, *(len(r.name) for r in flow.routes), *(len(e[1]) for e in flow._endpoints)]
        )
        for route in flow.routes:
            events = ", ".join("*" if e is None else e for e in route.events)
            url = flow.url_for(route.name) if flow.public_url else base + route.path
            kind = "status" if route.status_callback else "sound" if route.sound else "xml"
            print(f"  {route.name:<{width}} {kind:<6} [{events}]  {url}")
        # Plain endpoints too (a TransferTrigger's): one made without a secret is not
        # served, and this list is where that shows.
        for path, name, _view, methods in flow._endpoints:
            print(f"  {name:<{width}} {'http':<6} [{', '.join(methods)}]  {base + path}")


def cmd_run(args: argparse.Namespace) -> int:
    flows, own_app = load_target(args.app)
    # The user's own app when it serves every flow: its other routes, hooks and middleware
    # (ProxyFix, say) are part of what Vobiz will reach in production.
    app = own_app or build_app(flows)
    _print_routes(flows)
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False)
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    # Listed without mounting; settings a listing does not need are stood in, so an app
    # module that mounts at import (create_app) loads without them.
    with local_settings(sys.stdout, "this listing"):
        flows, _ = load_target(args.app)
        _print_routes(flows)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    # A check runs in the user's CI, where the secrets are not: the settings it does not
    # need are stood in (its sample calls never leave this machine).
    with local_settings(sys.stdout, "this check"):
        flows, own_app = load_target(args.app)
        # Through the user's own app when it serves every flow: its before_request hooks,
        # config and extensions are part of what answers Vobiz.
        app = own_app or build_app(flows)
        results = [result for flow in flows for result in check_flow(flow, app)]
    failures = 0
    for result in results:
        print(result)
        failures += not result.ok
    print(f"{failures} failure(s)" if failures else "all routes answer valid VobizXML")
    return 1 if failures else 0


def cmd_call(args: argparse.Namespace) -> int:
    from answerkit.testing.terminal import run_terminal_call

    return run_terminal_call(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from answerkit.demo import run_demo

    default_logging()
    return run_demo(verbose=args.verbose)


_APP_HELP = (
    "the application: app.py, FILE:VARIABLE (a CallFlow or Flask app), "
    "FILE:FACTORY() (a function making the Flask app, as gunicorn's), or a module"
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="answerkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"answerkit {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve an application with the development server")
    run.add_argument("app", help=_APP_HELP)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=_port, default=5000)
    run.set_defaults(func=cmd_run)

    routes = sub.add_parser("routes", help="list every route with its public URL")
    routes.add_argument("app", help=_APP_HELP)
    routes.set_defaults(func=cmd_routes)

    check = sub.add_parser("check", help="call every route with signed samples; exit 1 on failure")
    check.add_argument("app", help=_APP_HELP)
    check.set_defaults(func=cmd_check)

    call = sub.add_parser("call", help="place a simulated call through an application")
    call.add_argument("app", help=_APP_HELP)
    call.add_argument(
        "--route",
        default=None,
        help="the route the call starts at (default: 'answer', else the first a call can "
        "start at: no status callback, sound URL or recipe step)",
    )
    call.add_argument("--from", dest="from_", default="+14155550100")
    call.add_argument("--to", default="+14155550199")
    call.add_argument("--digits", default=None, help="scripted input, e.g. 1,2 (- for none)")
    call.add_argument("--speech", default=None, help="scripted speech, e.g. 'sales,yes'")
    call.add_argument(
        "--dial",
        default=None,
        help="scripted dial outcomes, one per Dial: answer, bridge, busy, no-answer, timeout, "
        "failed or cancel (e.g. busy,no-answer)",
    )
    call.add_argument(
        "--record",
        default=None,
        help="scripted endings, one per Record, after a 5 s message: silence (the "
        "default), key or hangup (e.g. key)",
    )
    call.add_argument(
        "--hangup-url",
        default=None,
        help="where the Hangup goes, as an Application's hangup_url: a route name, a path "
        "or a URL (default: the start route, as on Vobiz)",
    )
    call.add_argument(
        "--callee-digits",
        default=None,
        help="scripted input of the first call the flow places (an agent), e.g. 1",
    )
    call.set_defaults(func=cmd_call)

    demo = sub.add_parser("demo", help="play a complete simulated call through real HTTP")
    demo.add_argument("-v", "--verbose", action="store_true")
    demo.set_defaults(func=cmd_demo)
    return parser


def _port(text: str) -> int:
    """A TCP port for argparse: 1-65535 (the OS would take 99999 as 34463)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text!r}")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``answerkit`` command."""
    args = make_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except AnswerkitError as exc:
        print(f"answerkit: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `answerkit routes app.py | head`: the reader has gone, and so has the need to
        # write; the interpreter's flush at exit would raise again, so stdout goes too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
