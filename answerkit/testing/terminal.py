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
import sys
from typing import TextIO

from answerkit.app import CallFlow, flows_of
from answerkit.check import handler_errors
from answerkit.errors import ConfigurationError
from answerkit.loader import load_target, local_settings
from answerkit.testing.local_vobiz import LocalVobiz
from answerkit.testing.sim_call import SimulatedCall
from answerkit.testing.sim_signals import GatherPrompt
from answerkit.testing.sim_transcript import TranscriptEvent
from answerkit.testing.simulator import CallSimulator

__all__ = ["run_terminal_call"]


def _pick(flows: list[CallFlow], route: str | None) -> tuple[CallFlow, str | None]:
    """The flow ``route`` belongs to, and what to call: ``route`` is a route's name, its
    path as ``answerkit routes`` prints it (with the prefix the flow is mounted at) or
    within its flow, either with a query string, or a URL (passed on as it is)."""
    if route is None:
        return flows[0], None
    if "://" in route:
        for flow in flows:
            if flow.public_url and route.startswith(flow.public_url) and flow.route_at_url(route):
                return flow, route
        return flows[0], route
    path, sep, query = route.partition("?")
    for flow in flows:
        prefix = flow._mount_prefix or ""
        within = [path[len(prefix) :]] if prefix and path.startswith(prefix + "/") else []
        for candidate in (path, *within):
            try:
                found = flow.get_route(candidate)
            except ConfigurationError:
                continue
            # By name, the simulator builds the URL with the flow's prefix; a query string
            # goes with the full path.
            return flow, (prefix + found.path + sep + query) if sep else found.name
    names = ", ".join(r.name for f in flows for r in f.routes)
    raise ConfigurationError(f"no flow has a route {route!r} (routes: {names})")


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
    flows, own_app = load_target(args.app)
    # Every flow the app serves: a call may be sent on to any of them (a Redirect), and
    # each must use the local Vobiz API and have its errors reported.
    flows = flows_of(own_app) if own_app is not None else flows
    flow, route = _pick(flows, getattr(args, "route", None))
    scripted = any(getattr(args, name, None) for name in ("digits", "speech", "dial"))
    interactive = not scripted and stdin.isatty()
    console = _Console(out, stdin, interactive)
    # The flows' Transfer, Hangup and make-call requests go to a local Vobiz API on
    # loopback, never to the real platform, and act on the simulated calls.
    api = LocalVobiz().start()
    for each in flows:
        each.transfers.client = api.client()
    # Through the user's own app when it serves every flow: its hooks, config and
    # extensions are part of what answers Vobiz.
    sim = CallSimulator(flow, app=own_app, input_provider=console.ask, local_vobiz=api)
    sim.add_listener(console.show)
    callee_digits = getattr(args, "callee_digits", None)
    if callee_digits:  # the first call the flow places: an agent, a forwarding target
        sim.expect_outbound(None, digits=callee_digits)
    mode = "interactive" if interactive else "scripted" if scripted else "stdin is no terminal"
    print(f"calling flow {flow.name} ({mode})", file=out)
    with api, sim, handler_errors(flows) as errors:
        call = sim.call(
            route,
            from_=getattr(args, "from_", None) or "+14155550100",
            to=getattr(args, "to", None) or "+14155550199",
            digits=getattr(args, "digits", None),
            speech=getattr(args, "speech", None),
            dial=getattr(args, "dial", None),
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
        for error in errors:
            print(f"  handler error: {error}", file=out)
        print(f"FAILED: {len(errors)} webhook(s) got the fallback document", file=out)
        return 1
    if t.step_limit_reached:
        # The flow never ended the call by itself (a Redirect loop, say): a failure, even
        # though the simulated caller's hang-up is recorded as a normal one.
        print("FAILED: the flow never ended the call: the step limit was reached (a "
              "Redirect loop?)", file=out)  # fmt: skip
        return 1
    normal = code in (4000, 4010)
    print(f"{'ok' if normal else 'FAILED'}: call ended with {code} {t.hangup_cause_name}", file=out)
    return 0 if normal else 1
