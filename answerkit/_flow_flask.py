"""Mounting a flow into Flask: its blueprint, the prefix Flask serves it under, its
registration on an app (with its routes also answered ahead of Flask's dispatch), and the
record of which flows an app serves.

The request pipeline itself knows nothing of Flask (:mod:`answerkit.dispatch`); this is
the one place the flow meets Flask's registration machinery, whose callbacks set the
address every URL of the flow is built and signed with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flask import Blueprint, Flask
from flask.blueprints import BlueprintSetupState
from flask.sansio.app import App

from answerkit._wsgi import BodyHold, flask_view, install_direct_routes
from answerkit.dispatch import Dispatcher
from answerkit.errors import ConfigurationError

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = logging.getLogger("answerkit")

#: Vobiz calls a route with POST, or GET when a callback method says so.
_ROUTE_METHODS = ("GET", "POST")


def make_blueprint(flow: CallFlow, url_prefix: str | None) -> Blueprint:
    """A Flask blueprint serving every route of ``flow`` under ``url_prefix``."""
    prefix = _clean_prefix(url_prefix)
    if flow._mount_prefix is not None and prefix not in (
        flow._mount_prefix,
        flow._blueprint_prefix,
    ):
        raise ConfigurationError(
            f"flow {flow.name!r} is already mounted at {flow._mount_prefix or '/'!r}; "
            "one flow has one public address"
        )
    if flow._mount_prefix is None:
        flow._mount_prefix = flow._blueprint_prefix = prefix
        try:
            dispatcher = flow.dispatcher(checks=False)
        except BaseException:
            flow._mount_prefix = flow._blueprint_prefix = None
            raise
    else:
        dispatcher = flow.dispatcher(checks=False)
    bp = Blueprint(flow.name, __name__, url_prefix=prefix or None)
    # First, before the routes: a registration it refuses leaves no rule behind. It
    # knows the dispatcher its views were made with: after a refused registration the
    # flow makes another, and this blueprint's views would serve the routes of then.
    bp.record(lambda state: flow._registered_at(state, dispatcher))
    # Before the app's request hooks, by route name.
    bp.url_value_preprocessor(BodyHold(frozenset(r.name for r in flow._routes.values())))
    for route in flow._routes.values():
        bp.add_url_rule(
            route.path,
            endpoint=route.name,
            view_func=flask_view(dispatcher, route),
            methods=_ROUTE_METHODS,
            strict_slashes=True,
        )
    for path, name, view, methods in flow._endpoints:
        bp.add_url_rule(path, endpoint=name, view_func=view, methods=methods)
    # Kept on each app it is registered on, so that the command line finds the flows
    # an app factory made (flows_of).
    bp.record_once(lambda state: _record_flow(state.app, flow))
    return bp


def follow_registration(flow: CallFlow, state: BlueprintSetupState, made_with: Dispatcher) -> None:
    """Follow the prefix Flask serves the flow under, which the blueprint's own may not
    be: ``register_blueprint(flow.blueprint(), url_prefix="/voice")``, or a blueprint
    nested in one with a prefix. url_for left it out, so every Gather action and
    Redirect it built led to a 404 (and the call was dropped).

    The mount checks run here, on the first registration: they build the flow's URLs
    (a TransferTrigger's routes= may name one), which carry the prefix."""
    if made_with is not flow._dispatcher:
        _unrecord(state)
        raise ConfigurationError(
            f"flow {flow.name!r}: this blueprint was made before a registration that was "
            "refused, and serves the routes of then; make a new one with flow.blueprint()"
        )
    served = _clean_prefix(state.url_prefix)
    if flow._address_fixed and served == flow._mount_prefix:
        return
    if flow._address_fixed:
        raise ConfigurationError(
            f"flow {flow.name!r} is served at {flow._mount_prefix or '/'!r} already; "
            f"registering it at {served or '/'!r} too would give it two public addresses "
            "(url_for and the signature check know one): mount it once, or make a second "
            "CallFlow"
        )
    flow._mount_prefix = served
    try:
        flow._run_checks()
    except BaseException:
        # As if never mounted: the missing route a check names may still be declared,
        # and the app registers the flow again (the refused registration added no rule,
        # as this runs first; Flask had recorded the blueprint, which is taken back).
        flow._mount_prefix = flow._blueprint_prefix = None
        flow._dispatcher = None
        _unrecord(state)
        raise
    flow._address_fixed = True


def register(flow: CallFlow, app: Flask, url_prefix: str | None, *, direct: bool) -> None:
    """Mount ``flow``'s routes on an existing Flask app (see
    :meth:`CallFlow.register <answerkit.app.CallFlow.register>`)."""
    prefix = _clean_prefix(url_prefix)
    if flow.name in app.blueprints:
        raise ConfigurationError(
            f"this app already has a flow (or blueprint) named {flow.name!r}: give each "
            "CallFlow on one app its own name (CallFlow('sales', ...), CallFlow('support', "
            "...))"
        )
    # The methods each path is served with (None: any method).
    taken: dict[str, set[str] | None] = {}
    for rule in app.url_map.iter_rules():
        if app.url_map.host_matching or rule.subdomain != app.url_map.default_subdomain:
            continue  # served on another host or subdomain: beside the flow's, no clash
        served = taken.get(rule.rule, set())
        if rule.methods is None or served is None:
            taken[rule.rule] = None
        else:
            taken[rule.rule] = served | rule.methods
    # Flask serves the rule registered first: a route or endpoint of this flow at a path
    # the app serves already (another flow's route, the app's own view, a second flow's
    # TransferTrigger) would never be reached, and nothing would say so; the flow's
    # url_for would still hand out its URL.
    # A route by POST, Vobiz's method unless a callback asks for GET: a GET page of the
    # app's own at its path is only warned of (below).
    ours: list[tuple[str, str, Sequence[str], str]] = [
        (path, f"route {route.name!r}", ("POST",), "mount the flow with its own url_prefix=")
        for path, route in flow._routes.items()
    ]
    ours += [
        (
            path,
            f"endpoint {name!r}",
            methods,
            "give it its own path= (a TransferTrigger per flow needs one)",
        )
        for path, name, _view, methods in flow._endpoints
    ]
    for path, what, methods, advice in ours:
        if prefix + path not in taken:
            continue
        wanted = {m.upper() for m in methods} | ({"HEAD"} if "GET" in methods else set())
        served = taken[prefix + path]
        # Flask picks the rule by method: a GET status page at the path of a POST
        # endpoint is no clash (OPTIONS, which Flask adds to every rule, is none either).
        if served is not None and not (wanted & served) - {"OPTIONS"}:
            continue
        raise ConfigurationError(
            f"flow {flow.name!r}: {what} at {prefix + path!r} is already served by "
            f"another view of this app (another flow's, or the app's own) for the same "
            f"method, which Flask would answer instead; {advice}"
        )
    for path, route in flow._routes.items():
        served = taken.get(prefix + path, set())
        if served is None or "GET" in served:
            log.warning(
                "flow %r: route %r at %r: a GET to that path reaches another view of the app, "
                "not the route; callbacks with method='GET' to it would not reach its handlers",
                flow.name,
                route.name,
                prefix + path,
            )
    app.register_blueprint(flow.blueprint(url_prefix))
    if not direct:
        return
    dispatcher = flow.dispatcher()
    if dispatcher.verifier is not None and dispatcher.verifier.needs_host:
        return  # no public URL: the signed URL depends on Werkzeug's reading of the host
    if app.url_map.host_matching or app.subdomain_matching:
        return  # Flask's routing depends on the host
    direct_routes = install_direct_routes(app)
    if direct_routes is None:
        return
    for route in flow._routes.values():
        path = (flow._mount_prefix or "") + route.path
        direct_routes.add(path, dispatcher, route, f"{flow.name}.{route.name}")


#: The key of ``app.extensions`` under which each registered flow is kept, by name.
FLASK_EXTENSION = "answerkit"


def flows_of(app: Flask) -> list[CallFlow]:
    """The CallFlows registered on ``app``, in the order they were registered."""
    return list(app.extensions.get(FLASK_EXTENSION, ()))


def _unrecord(state: BlueprintSetupState) -> None:
    """Take back Flask's record of a blueprint whose registration is being refused (Flask
    records it before running its setup), so that the app may register the flow again."""
    key = f"{state.name_prefix}.{state.name}".lstrip(".")
    if state.app.blueprints.get(key) is state.blueprint:
        del state.app.blueprints[key]


def _record_flow(app: App, flow: CallFlow) -> None:
    # By identity, not name: two flows of one name may be registered under two blueprint
    # names (register_blueprint(..., name=...)).
    flows: list[CallFlow] = app.extensions.setdefault(FLASK_EXTENSION, [])
    if not any(known is flow for known in flows):
        flows.append(flow)


def endpoint_name(base: str, path: str) -> str:
    """A Flask endpoint name for an endpoint of ``base`` at ``path``, the same for no two
    paths: each character but ASCII letters and digits is spelled by its code point between
    underscores ("/crm-hook" and "/crm_hook" once both gave "_crm_hook", and Flask's
    AssertionError when the flow was mounted); names of routes never look so."""
    return base + "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):x}_" for ch in path)


def _clean_prefix(prefix: str | None) -> str:
    if not prefix or prefix == "/":
        return ""
    return "/" + prefix.strip("/")
