"""Where a recipe sends the caller on: the checks made when its flow is mounted.

IVRMenu and Forwarding send the caller to a route of their flow with a ``Redirect`` (a
menu's options and fallback, a forwarding's fallback), named by route name or by path.
Each such target must answer a Redirect with a document, and the fallbacks that pass on a
caller who never answers (or whom nobody answers) must not lead back to a recipe already
passed: each one starts afresh, so that caller would go round for ever.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from answerkit._deadline import loggable
from answerkit._flow_routes import _default_name, hold_name
from answerkit._log import QuietLog
from answerkit.errors import ConfigurationError
from answerkit.request import CallRequest

if TYPE_CHECKING:
    from answerkit.app import CallFlow
    from answerkit.dispatch import Route
    from answerkit.elements import Response

log = QuietLog("answerkit")

#: Each flow's recipe routes that pass a caller on by fallback: route name -> (the recipe's
#: name, its fallback as given: a route name or path, None for a handler). Names only: a
#: recipe holds its flow, and an entry holding one would keep the flow alive for good.
_PASSED_ON: weakref.WeakKeyDictionary[CallFlow, dict[str, tuple[str, str | None]]] = (
    weakref.WeakKeyDictionary()
)


def passes_on(flow: CallFlow, recipe: str, routes: Iterable[str], fallback: object) -> None:
    """Record that a caller reaching any of ``routes`` (the recipe's own) may be passed on
    to ``fallback`` without a word or an answer from anyone."""
    target = fallback if isinstance(fallback, str) else None
    table = _PASSED_ON.setdefault(flow, {})
    for route in routes:
        table[route] = (recipe, target)


def hold_targets(flow: CallFlow, targets: Iterable[object]) -> None:
    """Keep each route name among ``targets`` (a recipe's, kept to be resolved when the flow
    is mounted) on the route it names now, if that route only has it lent (see
    answerkit/_flow_routes.py)."""
    for target in targets:
        if isinstance(target, str):
            hold_name(flow, target)


def handlers_named(flow: CallFlow, name: str) -> list[Route]:
    """The routes ``name`` could mean, when it is only a handler's name: [] when it is a
    name= of a route, the name a route has for good, or the name of the default handler of
    the route it finds; else that route and every route with a handler so named (a lambda
    named from its path), so that more than one is a doubt whatever the order."""
    if name in flow._given_names or name.startswith("/"):  # no handler's name is a path
        return []
    found = flow._by_name.get(name)
    if found is not None:
        default = found.handlers.get(None)
        if (found.name == name and found.path not in flow._named_by_event) or (
            default is not None and _default_name(default, found.path) == name
        ):
            return []
    return [
        route
        for route in flow.routes
        if route is found
        or (
            route.path not in flow._recipe_paths  # a recipe's handlers are its own business
            and any(
                _default_name(handler, route.path) == name for handler in route.handlers.values()
            )
        )
    ]


def check_target(
    flow: CallFlow,
    where: str,
    label: str,
    target: str,
    event: str = "Redirect",
    *,
    steps: bool = False,
    by_url: bool = False,
) -> None:
    """Refuse a ``target`` that is no route of ``flow``, or one whose answer to the
    ``event`` that brings a caller there (a Redirect, a transfer) would not go on with the
    call; or, unless ``steps``, a step of a recipe (its own moves take the caller there)."""
    try:
        route = flow.get_route(target)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {label} leads nowhere: {exc}") from None
    named_by = [] if by_url else handlers_named(flow, target)  # a URL names one route
    if len(named_by) > 1:
        # Declared first, one of them was lent the name, the others names from their
        # paths: the target went to whichever came first. Ambiguous in every order.
        paths = ", ".join(r.path for r in named_by)
        raise ConfigurationError(
            f"{where}: {label} {target!r} is the name of handlers of several routes "
            f"({paths}), none named so with name=: give the route you mean name={target!r}, "
            "or name it otherwise and use that"
        )
    if not steps and route.path in flow._inner_paths:
        # Reached alone, a WarmTransfer's hold route held the caller in a room no agent was
        # ever called to, for good; a Forwarding's result route dialled only its second.
        raise ConfigurationError(
            f"{where}: {label} {target!r} is a step of a recipe (a WarmTransfer's hold or "
            "landing, an IVRMenu's choice, a Forwarding's result), reached only through it: "
            "send the caller to the recipe's own route, or to one of yours (a handler that "
            "calls warm.start(call.call_uuid) to begin a warm transfer)"
        )
    if route.status_callback or route.sound:
        kind = "a status-callback route" if route.status_callback else "a sound route"
        raise ConfigurationError(
            f"{where}: {label} {target!r} is {kind}: it answers Event={event!r} with no "
            "call flow, so the call would end there (4010); send the caller to a route "
            "that answers with a document"
        )
    if route.handler_for(event) is None:
        events = ", ".join(repr(e) for e in route.events if e is not None)
        raise ConfigurationError(
            f"{where}: {label} {target!r} handles only Event={events}, and a caller sent "
            f"there arrives with Event={event!r} (the flow's apology would answer): give "
            f"that route a handler without event= or one for {event!r}"
        )


def check_no_loop(flow: CallFlow, where: str, start: str) -> None:
    """Refuse fallbacks that lead from the recipe at route ``start`` back to a recipe
    already passed."""
    # By path: a recipe's route declared where another route already was (a Hangup handler
    # on the answer URL) is that route, and keeps its name; the recipe's is an alias.
    table = {path: entry for name, entry in _PASSED_ON.get(flow, {}).items()
             if (path := _path_of(flow, name)) is not None}  # fmt: skip
    chain: list[str] = []
    path = _path_of(flow, start)
    while path is not None and path in table:
        recipe, target = table[path]
        if recipe in chain:
            loop = " -> ".join([*chain[chain.index(recipe) :], recipe])
            raise ConfigurationError(
                f"{where}: the fallbacks go round ({loop}), so a caller who never answers "
                "(or whom nobody answers) would be passed on for ever; end the chain with "
                "a route that does not prompt or forward again (voicemail, a goodbye)"
            )
        chain.append(recipe)
        # A handler fallback ends the chain; one that leads nowhere is refused by its own
        # check.
        path = None if target is None else _path_of(flow, target)


def _path_of(flow: CallFlow, name_or_path: str) -> str | None:
    try:
        return flow.get_route(name_or_path).path
    except ConfigurationError:
        return None


#: A recipe's handler: a flow handler (its ``None`` answers the empty document, logged).
Action = Callable[[CallRequest], "Response | None"]

#: Where a recipe sends a caller: a route's name, or a handler to run in place.
Target = str | Action


def answered(
    result: Response | None,
    where: str,
    handler: Callable[[CallRequest], Any],
    call: CallRequest,
) -> Response | None:
    """A recipe's handler's ``result``, with a warning when it is None: the empty document
    ends the call (4010), nearly always a Response built and not returned."""
    if result is None:
        log.warning(
            "%s: handler %s returned None (call %s): the empty document ends the call "
            "(4010); return the Response, or Response(Hangup()) to hang up on purpose",
            where,
            getattr(handler, "__qualname__", repr(handler)),
            loggable(call.call_uuid),
        )
    return result
