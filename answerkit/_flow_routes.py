"""Declaring a flow's routes and endpoints: every check a declaration gets, and the tables
(by path and by name) the flow keeps them in.

A declaration is refused when it is made, not on the first call: a handler that cannot
run (async def, a generator, the wrong arity), an event name misspelt, a path no URL
could reach as written, a path or a name two routes (or a route and an endpoint) would
share. Everything is checked before anything is kept.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from flask import Response as FlaskResponse

from answerkit._dispatch_webhook import STATUS_EVENTS
from answerkit.dispatch import Handler, Route
from answerkit.errors import ConfigurationError
from answerkit.request import Event

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = logging.getLogger("answerkit")


def add_route(
    flow: CallFlow,
    path: str,
    handler: Handler,
    *,
    name: str | None,
    event: Event | str | None,
    status_callback: bool,
    replay_check: bool,
    sound: bool,
) -> Route:
    """Register ``handler`` at ``path`` of ``flow``; returns the route (see
    :meth:`CallFlow.route <answerkit.app.CallFlow.route>`)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigurationError(f"route path must start with '/', got {path!r}")
    if not callable(handler):
        raise ConfigurationError(
            f"route {path!r}: the handler must be a function taking the CallRequest, "
            f"got {handler!r}"
        )
    if name == "":
        name = None  # as before: the handler's own name
    if name is not None and (not isinstance(name, str) or "." in name or name.startswith("/")):
        # Flask takes the name as an endpoint name, where a dot separates blueprints; and
        # names are looked up before paths, so name="/b" took over the route at /b.
        raise ConfigurationError(
            f"route {path!r}: name must be text without dots, not starting with '/' (it "
            f"names a Flask endpoint, and a path is looked up as itself), got {name!r}"
        )
    event = _checked_event(path, event)
    # type(handler).__call__: an object whose __call__ is async def.
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(type(handler).__call__):
        # Called without an event loop, it would return a coroutine that never runs: on
        # a status callback route nobody would ever know.
        raise ConfigurationError(
            f"route {path!r}: handlers are plain functions, not async def; make "
            f"{getattr(handler, '__name__', type(handler).__name__)!r} a def (run "
            "coroutines inside it with asyncio.run if you must)"
        )
    if any(
        inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f)
        for f in (inspect.unwrap(handler), type(handler).__call__)
    ):
        # Its body would never run: on a status callback route, not a word said.
        raise ConfigurationError(
            f"route {path!r}: handlers return their answer; "
            f"{getattr(handler, '__name__', type(handler).__name__)!r} is a generator "
            "function (it yields), whose body never runs when called: return instead"
        )
    _check_arity(path, handler)
    if "<" in path or "?" in path or "#" in path:
        raise ConfigurationError(
            f"route path {path!r}: put variables in query parameters "
            "(flow.url_for(name, key=value)), not in the path"
        )
    if path.endswith("."):
        # V2 signs url + nonce and V3 url + "." + nonce (spec §3): a V3 signature for the
        # path without its final dot verifies as V2 here, and the other way round.
        raise ConfigurationError(
            f"route path {path!r}: a path ending in '.' would take the signatures of "
            f"{path.rstrip('.') or '/'!r} (V2 signs the URL and the nonce with nothing "
            "between them, V3 with a '.'); end it with another character"
        )
    _check_served_path(path, "route")
    if flow._dispatcher is not None:
        raise ConfigurationError(
            f"flow {flow.name!r} is already mounted; declare route {path!r} before "
            "register() or create_app()"
        )
    event_key = event.value if isinstance(event, Event) else event
    # Everything is checked before anything is kept: a refused declaration leaves no
    # half-made route behind to be mounted, or to refuse the corrected one.
    if not replay_check and (status_callback or event_key in STATUS_EVENTS):
        # A replay-free route records no signature: a status callback there (a Hangup
        # ending a call's state, a DialHangup) could be any captured fetch of the route
        # sent again, with another call's fields.
        raise ConfigurationError(
            f"route {path!r}: replay_check=False is for a route whose answer is the same "
            "whoever asks (hold music); "
            + ("a status_callback route" if status_callback else f"a {event_key} handler")
            + " acts on the call, so its signatures must be recorded: leave replay_check on"
        )
    if sound and status_callback:
        raise ConfigurationError(
            f"route {path!r}: a sound route answers a document of Play, Speak and Wait, "
            "and a status_callback route none; declare it as one or the other"
        )
    route = flow._routes.get(path)
    # A route is named by the first of its declarations that names it: one with name=, or
    # its default handler (by the handler's name). Until then a handler for one event only
    # lends it a name for now (an answer route whose Hangup handler came first was named
    # after it for good, and url_for("answer") failed on every call). Every name= given
    # reaches the route too.
    # A name lent for now gives way: to the route's own later, or to another route's.
    route_name = name or _default_name(handler, path)
    names_route = name is not None or event is None
    if route is None and not names_route:
        # One Hangup handler for several routes, each declared first: a free name for now.
        route_name = _lent_name(flow, path, route_name)
    renames = route is not None and names_route and path in flow._named_by_event
    gives_name = names_route if route is None else (renames or name is not None)
    if route is None:
        if any(route_name == taken or path == served for served, taken, *_ in flow._endpoints):
            raise ConfigurationError(
                f"flow {flow.name!r}: route {route_name!r} at {path!r} would share the "
                "path or the name of an endpoint (a TransferTrigger's, a health check's); "
                "give it another name= or path"
            )
        holder = _firm_holder(flow, route_name)
        if holder is not None:
            raise ConfigurationError(
                f"flow {flow.name!r} already has a route named {route_name!r} "
                f"(at {holder.path}); pass name= to tell them apart"
            )
    else:
        if replay_check != route.replay_check:
            raise ConfigurationError(
                f"route {path!r}: replay_check is per URL, and its other handlers have "
                f"replay_check={route.replay_check}"
            )
        if status_callback and not route.status_callback:
            # The flag is the URL's: given to one handler of an answer URL, it would empty
            # every answer there (the documents dropped, each call cut off with 8011). A
            # handler added without it to a status URL leaves the URL as it is.
            raise ConfigurationError(
                f"route {path!r}: status_callback is per URL, and its other handlers "
                "answer with XML. A URL that answers with XML needs none for its Hangup: "
                "status events (Hangup, DialHangup...) on it already get an empty 200; "
                "drop status_callback=True"
            )
        # Equal sound flags, and never sound with status_callback (refused above):
        # no URL is both.
        if sound != route.sound:
            raise ConfigurationError(
                f"route {path!r}: sound is per URL, and its other handlers have sound={route.sound}"
            )
        if event_key in route.handlers:
            raise ConfigurationError(
                f"route {path!r} already has a handler for "
                f"{'every event' if event_key is None else 'event ' + repr(event_key)}"
            )
        other = _firm_holder(flow, route_name)
        if gives_name and other is not None and other is not route:
            raise ConfigurationError(
                f"flow {flow.name!r} already has a route named {route_name!r} "
                f"(at {other.path}); pass name= to give the route at {path} another"
            )
        if gives_name and any(route_name == taken for _, taken, *_ in flow._endpoints):
            raise ConfigurationError(
                f"flow {flow.name!r}: route name {route_name!r} is an endpoint's (a "
                "TransferTrigger's, a health check's); give the route another name="
            )
    if gives_name:
        _take_back(flow, route_name, keep=route)
    if route is None:
        route = Route(
            route_name,
            path,
            status_callback=status_callback,
            replay_check=replay_check,
            sound=sound,
        )
        flow._routes[path] = route
        flow._by_name[route_name] = route
        if not names_route:
            flow._named_by_event.add(path)
    else:
        if renames:
            flow._named_by_event.discard(path)
            lent = route.name
            if flow._by_name.get(lent) is route and lent not in flow._held_names:
                del flow._by_name[lent]  # lent for now, never the user's choice
            route.name = route_name
        if renames or name is not None:
            flow._by_name[route_name] = route
        elif (
            event is None
            and _firm_holder(flow, route_name) is None
            and not any(route_name == taken for _, taken, *_ in flow._endpoints)
        ):
            # The default handler of a route a name= named already: its own name reaches
            # the route too, unless another route has it for good (url_for("answer")
            # failed after an earlier Hangup handler's name="main"); one it was only
            # lent to gives it back, as to any naming declaration.
            _take_back(flow, route_name, keep=route)
            flow._by_name[route_name] = route
    route.handlers[event_key] = handler
    route.status_callback = route.status_callback or status_callback
    if name is not None:
        flow._given_names.add(name)
    return route


def add_endpoint(
    flow: CallFlow,
    path: str,
    view: Callable[[], FlaskResponse],
    *,
    name: str,
    methods: Sequence[str],
) -> None:
    """Serve a plain Flask view (not a Vobiz webhook) beside ``flow``'s routes."""
    _check_served_path(path, "endpoint")
    if flow._mount_prefix is not None:
        # The blueprint is built already: the endpoint would never be served (a 404).
        raise ConfigurationError(
            f"flow {flow.name!r} is already mounted; add endpoint {path!r} (a "
            "TransferTrigger, say) before create_app() or register()"
        )
    for served, taken, *_ in flow._endpoints:
        if served == path or taken == name:
            raise ConfigurationError(
                f"flow {flow.name!r} already serves an endpoint at {served!r} named "
                f"{taken!r}; give each endpoint its own path= and name"
            )
    if name in flow._by_name or path in flow._routes:
        # The route would answer the endpoint's requests (a health probe, unsigned,
        # got the route's 403), or Flask would refuse the second name when mounted.
        raise ConfigurationError(
            f"flow {flow.name!r}: endpoint {name!r} at {path!r} would share the path or "
            "the name of a route; give it its own path"
        )
    flow._endpoints.append((path, name, view, list(methods)))


def get_route(flow: CallFlow, name_or_path: str) -> Route:
    """``flow``'s route with this name (or path); ConfigurationError if there is none."""
    route = flow._by_name.get(name_or_path) or flow._routes.get(name_or_path)
    if route is None:
        known = ", ".join(sorted(flow._by_name)) or "none declared"
        raise ConfigurationError(
            f"flow {flow.name!r} has no route {name_or_path!r} (routes: {known})"
        )
    return route


def _check_served_path(path: str, what: str) -> None:
    """Refuse a route's or an endpoint's path that no URL of it could reach as written."""
    if not path.isprintable() or any(c.isspace() for c in path):
        # url_for puts the path into every URL as it is, and an element refuses a URL with
        # a space or a control character in it: a space (an IVRMenu named "main menu")
        # made each Gather's action invalid, and each call the fallback.
        raise ConfigurationError(
            f"{what} path {path!r} has a space or an invisible character in it, which no "
            "URL of it could carry: use '-' or '_' between words"
        )
    if _PERCENT_ESCAPE.search(path) or "\\" in path or "//" in path:
        # Flask matches the decoded path (a "%20" route answered 404) and redirects "//"
        # (a 308 Vobiz does not follow: an IVRMenu named "sales/"), and the client refuses
        # a backslash in the URL it would transfer a call to.
        raise ConfigurationError(
            f"{what} path {path!r} cannot be served as written: no %-escape, backslash or '//'"
        )


_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _check_arity(path: str, handler: Handler) -> None:
    """Refuse a handler that cannot take the one CallRequest: found when declared, not on
    every call (each one would get the fallback)."""
    try:
        # Not through __wrapped__: a decorator that supplies arguments wraps a function
        # taking more than the call, and the wrapper is what gets called.
        signature = inspect.signature(handler, follow_wrapped=False)
    except (TypeError, ValueError):  # a builtin or an extension without one: trust it
        return
    try:
        signature.bind(object())
    except TypeError:
        name = getattr(handler, "__name__", type(handler).__name__)
        raise ConfigurationError(
            f"route {path!r}: handler {name!r}{signature} must take one argument, the "
            "CallRequest (def handler(call: CallRequest) -> Response)"
        ) from None


def _checked_event(path: str, event: Event | str | None) -> Event | str | None:
    """``event``, refused when it is a Vobiz event misspelt (``"hangup"``: Vobiz sends
    ``Hangup``, so the handler would never run) or not text; an unknown name is taken
    (Vobiz may add events), with a warning."""
    if event is None or isinstance(event, Event):
        return event
    if not isinstance(event, str) or not event:
        raise ConfigurationError(
            f"route {path!r}: event must be an Event (Event.Hangup) or its name, got {event!r}"
        )
    try:
        return Event(event)
    except ValueError:
        pass
    folded = event.replace("_", "").lower()
    for known in Event:
        if known.value.lower() == folded:
            raise ConfigurationError(
                f"route {path!r}: event {event!r} is not a Vobiz event name (they are "
                f"case-sensitive); did you mean Event.{known.name} ({known.value!r})?"
            )
    log.warning(
        "route %s: event %r is not one the spec lists; its handler runs only for webhooks "
        "whose Event is exactly %r",
        path,
        event,
        event,
    )
    return event


def _default_name(handler: Handler, path: str) -> str:
    """The handler's function name, or for a lambda one made from the path."""
    name = getattr(handler, "__name__", "")
    if name.isidentifier():
        return str(name)
    return _path_name(path)


def _path_name(path: str) -> str:
    """A route name made from its path ("/menu/choice": "menu_choice")."""
    return path.strip("/").replace("/", "_") or "root"


def _is_lent(flow: CallFlow, route: Route, name: str) -> bool:
    """Whether ``name`` is ``route``'s only for now (no declaration has named it yet, and
    no recipe keeps it as a target)."""
    return (
        route.path in flow._named_by_event and route.name == name and name not in flow._held_names
    )


def _firm_holder(flow: CallFlow, name: str) -> Route | None:
    """The route ``name`` names for good, or None (no route, or one it is only lent to)."""
    holder = flow._by_name.get(name)
    return None if holder is None or _is_lent(flow, holder, name) else holder


def _lent_name(flow: CallFlow, path: str, preferred: str, avoid: str = "") -> str:
    """A free name to lend the route at ``path``: ``preferred``, its path's, or that with a
    number."""
    base = _path_name(path)
    candidates = itertools.chain((preferred, base), (f"{base}_{n}" for n in itertools.count(2)))
    return next(
        c
        for c in candidates
        if c != avoid
        and c not in flow._by_name
        and not any(c == taken for _, taken, *_ in flow._endpoints)
    )


def _take_back(flow: CallFlow, name: str, keep: Route | None) -> None:
    """Give ``name`` back from a route it was only lent to (not ``keep``), lending that
    route another: a declaration that names a route for good wants it."""
    holder = flow._by_name.get(name)
    if holder is None or holder is keep or not _is_lent(flow, holder, name):
        return
    del flow._by_name[name]
    holder.name = _lent_name(flow, holder.path, _path_name(holder.path), avoid=name)
    flow._by_name[holder.name] = holder
    log.warning(
        "flow %r: the route at %s (handlers for one event only, so far) was named %r for "
        "now; that name is now another route's, and this one is %r: pass name= to name it "
        "yourself",
        flow.name,
        holder.path,
        name,
        holder.name,
    )


def hold_name(flow: CallFlow, name: str) -> None:
    """Keep ``name`` on the route it names now, for good (a recipe or a trigger keeps it
    as a target: given back later, the target went to another route in silence). The
    route may still be named otherwise; the held name stays one of its names."""
    if name in flow._by_name:
        flow._held_names.add(name)
