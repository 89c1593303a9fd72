"""``answerkit call APP``: a simulated call from the terminal.

It prints what the caller hears, the dials, transfers and webhooks as they happen,
and asks for digits when the flow gathers, if stdin is a terminal and no input was
scripted. With ``--digits 1,2`` (``-`` for no input), ``--speech`` and ``--dial``
it runs scripted (``--callee-digits`` scripts the first call the flow places, an agent);
without a terminal it never waits for input. Settings the app needs and that are not set
(auth token, public URL, state URL) are stood in: the call never leaves this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TextIO
from urllib.parse import urlsplit

from answerkit._flow_flask import flows_of
from answerkit.app import CallFlow
from answerkit.check import handler_errors
from answerkit.errors import ConfigurationError
from answerkit.loader import build_app, load_target, local_settings
from answerkit.testing.local_vobiz import LocalVobiz
from answerkit.testing.sim_call import SimulatedCall
from answerkit.testing.sim_signals import GatherPrompt
from answerkit.testing.sim_transcript import TranscriptEvent
from answerkit.testing.simulator import CallSimulator

__all__ = ["run_terminal_call"]


def _pick(
    named: list[CallFlow], served: list[CallFlow], route: str | None, option: str = "--route"
) -> tuple[CallFlow, str | None]:
    """The flow ``route`` belongs to, and what to call. ``named`` are the flows the
    command named (all the module's when it named none), looked in first; ``served`` all
    those the app serves. ``route`` is a path as ``answerkit routes`` prints it (with the
    prefix the flow is mounted at, and a query string if wanted), a route's name or its
    path within its flow, or a URL (passed on as it is)."""
    if route is None:
        return named[0], None
    others = [flow for flow in served if not any(flow is n for n in named)]
    if "://" in route:
        host = urlsplit(route).hostname
        for flow in (*named, *others):
            own = urlsplit(flow.public_url or "").hostname
            if own == host and flow.route_at_url(route) is not None:
                return flow, route
        return named[0], route
    path, sep, query = route.partition("?")
    for flow in (*named, *others):  # the full path, as served
        prefix = flow._mount_prefix or ""
        for each in flow.routes:
            if prefix + each.path == path:
                return flow, route if sep else each.name
    for group in (named, others):  # a name, or a path within its flow
        found = [(flow, flow.get_route(path)) for flow in group if _has_route(flow, path)]
        if len(found) > 1:
            names = ", ".join(flow.name for flow, _ in found)
            raise ConfigurationError(
                f"{option} {route!r} names a route of several flows ({names}): give its path "
                "as `answerkit routes` prints it, or name the flow (FILE:VARIABLE)"
            )
        if found:
            flow, each = found[0]
            prefix = flow._mount_prefix or ""
            # By name, the simulator builds the URL with the flow's prefix; a query string
            # goes with the full path.
            return flow, (prefix + each.path + sep + query) if sep else each.name
    names = ", ".join(r.name for f in (*named, *others) for r in f.routes)
    raise ConfigurationError(f"{option}: no flow has a route {route!r} (routes: {names})")


def _served(flow: CallFlow, picked: str | None) -> str | None:
    """What :func:`_pick` found, as the path the app serves it at (a route's name is the
    flow's own, and its path within the flow lacks the flow's prefix), or the URL."""
    if picked is None or "://" in picked or picked.startswith("/"):
        return picked
    return (flow._mount_prefix or "") + flow.get_route(picked).path


def _has_route(flow: CallFlow, name_or_path: str) -> bool:
    try:
        flow.get_route(name_or_path)
    except ConfigurationError:
        return False
    return True


class _Console:
    """Prints events; asks the caller for input on a terminal."""

    def __init__(self, out: TextIO, stdin: TextIO, interactive: bool) -> None:
        self.out = out
        self.stdin = stdin
        self.interactive = interactive
        self.first: SimulatedCall | None = None

    def show(self, call: SimulatedCall, event: TranscriptEvent) -> None:
        if self.first is None:
            self.first = call
        prefix = "" if call is self.first else f"[{call.direction} {call.to}] "
        print(f"  {prefix}{event.text}", file=self.out, flush=True)

    def ask(self, call: SimulatedCall, prompt: GatherPrompt) -> str | None:
        if not self.interactive:
            return None
        wants = " or ".join("digits" if t == "dtmf" else "speech" for t in prompt.input_types)
        self.out.write(f"  > caller input ({wants}; Enter for none): ")
        self.out.flush()
        line = self.stdin.readline()
        if not line:
            return None
        return line.strip() or None


def run_terminal_call(
    args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Run one simulated call through the app in ``args.app``; 0 when it ended normally
    and no handler failed."""
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    with local_settings(out, "this local call"):
        return _call(args, stdin, out)


def _call(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    named, own_app = load_target(args.app)
    # Through the app `run` would serve: the user's own when it serves every flow (its
    # hooks, config and extensions answer Vobiz too), else one of the flows together. A
    # call may go on to any flow it serves (a Redirect): each uses the local Vobiz API and
    # has its errors reported.
    app = own_app or build_app(named)
    flows = flows_of(app)
    flow, route = _pick(named, flows, getattr(args, "route", None))
    hangup_url = getattr(args, "hangup_url", None)
    if hangup_url:  # a path no route serves got four 404s, and the call still passed
        args.hangup_url = _served(*_pick(named, flows, hangup_url, "--hangup-url"))
    scripted = any(getattr(args, name, None) for name in ("digits", "speech", "dial"))
    interactive = not scripted and stdin.isatty()
    console = _Console(out, stdin, interactive)
    with contextlib.ExitStack() as lent:
        # The flows' Transfer, Hangup and make-call requests go to a local Vobiz API on
        # loopback, never to the real platform, and act on the simulated calls; lent for
        # the call only (a test suite that loaded the app keeps its own clients).
        api = lent.enter_context(LocalVobiz())
        for each in flows:
            lent.enter_context(each.standing_in(client=api.client()))
        mode = "interactive" if interactive else "scripted" if scripted else "stdin is no terminal"
        sim = CallSimulator(flow, app=app, input_provider=console.ask, local_vobiz=api)
        return _play(args, sim, route, flows, console, mode, out)


def _play(
    args: argparse.Namespace,
    sim: CallSimulator,
    route: str | None,
    flows: list[CallFlow],
    console: _Console,
    mode: str,
    out: TextIO,
) -> int:
    """Place the call and say how it went (0: it ended normally, no handler failed)."""
    flow = sim.flow
    assert flow is not None
    sim.add_listener(console.show)
    callee_digits = getattr(args, "callee_digits", None)
    if callee_digits:  # the first call the flow places: an agent, a forwarding target
        sim.expect_outbound(None, digits=callee_digits)
    print(f"calling flow {flow.name} ({mode})", file=out)
    with sim, handler_errors(flows) as errors:
        call = sim.call(
            route,
            from_=getattr(args, "from_", None) or "+14155550100",
            to=getattr(args, "to", None) or "+14155550199",
            digits=getattr(args, "digits", None),
            speech=getattr(args, "speech", None),
            dial=getattr(args, "dial", None),
            record=getattr(args, "record", None),
            hangup_url=getattr(args, "hangup_url", None),
        )
        console.first = call
        try:
            call.run()
            sim.run_until_idle()
        except SystemExit as exc:
            # Let through by the dispatcher, as a process exit should be: here it would end
            # the call with the code the app chose, and no verdict.
            print(f"FAILED: a handler ended the process: {exc!r}", file=out)
            return 1
        if not call.ended:
            print("  (the call is still waiting: the caller hangs up)", file=out)
            call.hangup()
            sim.run_until_idle()
        # The simulator's own findings too (a webhook no handler answers, the Dial action's
        # Event, say), on every call it played: the app's fallback hid them as well.
        found = [error for each in sim.calls for error in each.transcript.handler_errors]
    errors += [error for error in found if error not in errors]
    t = call.transcript
    code = t.hangup_cause_code
    if errors:
        # Each was answered with the flow's fallback, as in production: the call "works",
        # but not as written.
        # A heading first: listed after the last webhook with its indentation, the errors
        # read as that webhook's (a Hangup's, for an answer handler that failed).
        print(f"FAILED: {len(errors)} webhook(s) got the fallback document:", file=out)
        for error in errors:
            print(f"  - handler error: {error}", file=out)
        return 1
    if t.step_limit_reached:
        # The flow never ended the call by itself (a Redirect loop, say): a failure, even
        # though the simulated caller's hang-up is recorded as a normal one.
        print("FAILED: the flow never ended the call: the step limit was reached (a "
              "Redirect loop?)", file=out)  # fmt: skip
        return 1
    # As the transcript reads it: 4000 or 4010, or the flow's own <Hangup> rejecting the
    # call (a block list, out of hours), which is the flow as written.
    normal = t.ended_normally
    print(f"{'ok' if normal else 'FAILED'}: call ended with {code} {t.hangup_cause_name}", file=out)
    return 0 if normal else 1
