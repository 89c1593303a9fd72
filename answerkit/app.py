"""Call-flow routes on Flask: declare routes, mount them, build their URLs, transfer to them.

A :class:`CallFlow` is a set of webhook routes that share one public URL, one set of
auth tokens and one per-call state store. It mounts into a Flask app as a blueprint
(:meth:`CallFlow.register`) or makes its own app (:meth:`CallFlow.create_app`); the
request pipeline itself lives in :mod:`answerkit.dispatch` and knows nothing of Flask, and
:mod:`answerkit._wsgi` answers the flow's routes ahead of Flask's dispatch when Flask has
nothing to add.

CallFlow is the public face; the work behind its larger methods lives beside it, one idea
a module: its settings checks (:mod:`answerkit._flow_settings`), route declarations
(:mod:`answerkit._flow_routes`), its URLs (:mod:`answerkit._flow_urls`), stand-in stores
and clients (:mod:`answerkit._flow_stand_ins`), mounting into Flask
(:mod:`answerkit._flow_flask`) and the health endpoint (:mod:`answerkit._flow_health`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Blueprint, Flask
from flask import Response as FlaskResponse
from flask.blueprints import BlueprintSetupState

from answerkit import _flow_flask, _flow_routes, _flow_stand_ins, _flow_urls
from answerkit._flow_flask import endpoint_name
from answerkit._flow_health import health_view
from answerkit._flow_settings import (
    ENV_PUBLIC_URL,
    check_flow_name,
    check_settings,
    checked_hangup_linger,
    checked_replay_window,
    clean_public_url,
    deadline_runner,
    flow_auth_tokens,
    signature_gate,
    state_spec,
)
from answerkit._keywords import advise_keywords
from answerkit.client import TransferResult, VobizClient
from answerkit.dispatch import Dispatcher, ErrorHook, Handler, Route
from answerkit.elements import Hangup, Response, Speak
from answerkit.errors import ConfigurationError
from answerkit.request import CallRequest, Event
from answerkit.state import StateStore
from answerkit.state_urls import open_store
from answerkit.transfer import TransferPlanner

#: A handler as declared: the decorator hands it back with its own type, so a handler
#: written ``-> Response`` stays one for a test that calls it, or a recipe given it. Named
#: for mypy's message on a handler of the wrong shape ("type variable HandlerFunction").
HandlerFunction = TypeVar("HandlerFunction", bound=Handler)

DEFAULT_FALLBACK = Response(
    Speak("We are sorry, we could not complete your call. Please try again later."),
    Hangup(),
)

__all__ = ["CallFlow"]


#: Keywords of the REST API and of other libraries, and what CallFlow takes for them.
_FLOW_RENAMED = {
    "auth_id": (
        "CallFlow's auth_token verifies webhooks; the REST client's account is "
        "client=VobizClient(auth_id=..., auth_token=...) or VOBIZ_AUTH_ID and VOBIZ_AUTH_TOKEN"
    ),
}
_LEG_RENAMED = {
    "aleg_url": "use aleg=, which takes a route's name or an absolute URL",
    "bleg_url": "use bleg=, which takes a route's name or an absolute URL",
    "a_leg": "use aleg=",
    "b_leg": "use bleg=",
    "legs": "the legs moved are those you give: aleg=, bleg= or both",
    "aleg_method": "use method= (one method for both legs)",
    "bleg_method": "use method= (one method for both legs)",
}


class CallFlow:
    """A named set of call-flow routes.

    ``public_url`` is the address at which Vobiz reaches the root of the web app that
    serves this flow (``https://voice.example.com``, or ``https://example.com/voice``
    behind a proxy that strips ``/voice``); a mount prefix given to :meth:`register`
    is added after it. It builds every callback URL and is what signatures are
    checked against. ``auth_token`` may list several tokens (rotation, parent
    accounts). Missing settings come from ``ANSWERKIT_PUBLIC_URL``,
    ``VOBIZ_AUTH_TOKEN`` (comma-separated) and ``ANSWERKIT_STATE_URL``.

    A call's state is kept for ``hangup_linger`` seconds after its ``Hangup`` webhook
    (never past the store's TTL), for the webhooks Vobiz sends after it: the Dial
    ``action``, RecordStop, late status callbacks. ``hangup_linger=0`` clears it at once.

    Example::

        flow = CallFlow("support", public_url="https://voice.example.com")

        @flow.route("/answer")
        def answer(call: CallRequest) -> Response:
            return Response(Speak("Hello"), Hangup())
    """

    @advise_keywords("CallFlow", _FLOW_RENAMED)
    def __init__(
        self,
        name: str,
        *,
        public_url: str | None = None,
        auth_token: str | Sequence[str] | None = None,
        state: str | StateStore | None = None,
        verify: bool = True,
        fallback: Response | None = None,
        sound_fallback: Response | None = None,
        trusted_proxies: int = 0,
        replay_window: float = 300.0,
        deadline: float | None = 8.0,
        status_deadline: float | None = 2.5,
        on_error: ErrorHook | None = None,
        client: VobizClient | None = None,
        transfer_hosts: Sequence[str] = (),
        hangup_linger: float = 300.0,
    ) -> None:
        check_flow_name(name)
        check_settings(
            fallback=fallback,
            sound_fallback=sound_fallback,
            trusted_proxies=trusted_proxies,
            hangup_linger=hangup_linger,
            on_error=on_error,
            client=client,
            transfer_hosts=transfer_hosts,
            state=state,
        )
        self.name = name
        self.public_url = clean_public_url(public_url or os.environ.get(ENV_PUBLIC_URL))
        self.auth_tokens = flow_auth_tokens(auth_token)
        self.verify = verify
        self.trusted_proxies = trusted_proxies
        self.replay_window = checked_replay_window(replay_window)
        self.on_error = on_error
        self.hangup_linger = checked_hangup_linger(hangup_linger)
        fallback_doc = fallback if fallback is not None else DEFAULT_FALLBACK
        # Rendered as a Response is (as a handler's answer is): a subclass's own to_bytes
        # is not trusted to check what it writes.
        self._fallback_bytes = Response.to_xml(fallback_doc).encode()
        self._sound_fallback_bytes = Response.to_xml(
            sound_fallback if sound_fallback is not None else Response()
        ).encode()
        self._state_spec = state_spec(state)
        self._store: StateStore | None = None
        self._store_lock = threading.Lock()
        # standing_in(): the open stand-ins, and the flow's own store and client meanwhile.
        self._stand_ins: list[tuple[StateStore | None, VobizClient | None]] = []
        self._own: tuple[StateStore | None, VobizClient | None] = (None, None)
        self._deadline = deadline_runner(deadline, status_deadline)
        self._routes: dict[str, Route] = {}
        self._by_name: dict[str, Route] = {}
        #: Paths of routes named, so far, after a handler of one event (see add_route).
        self._named_by_event: set[str] = set()
        #: Names a recipe or a trigger keeps as targets: never given back (see hold_name).
        self._held_names: set[str] = set()
        #: Every name given with name= (the strongest claim to a name; see handlers_named).
        self._given_names: set[str] = set()
        #: Paths of routes a recipe serves as a step of its own (a WarmTransfer's hold, an
        #: IVRMenu's choice), never where a call starts: `answerkit call` skips them.
        self._inner_paths: set[str] = set()
        #: Paths of every route a recipe declared: their handlers' names are the recipe's
        #: own (IVRMenu._entry, a WarmTransfer's landing), never a name a user means.
        self._recipe_paths: set[str] = set()
        #: The path prefix the flow is served under ("" at the root; None until mounted):
        #: part of every URL url_for builds and of every signed URL.
        self._mount_prefix: str | None = None
        #: The prefix the flow's blueprints are made with (blueprint()'s url_prefix), which
        #: Flask may extend (see _registered_at).
        self._blueprint_prefix: str | None = None
        #: Whether an app serves the flow already: its address is then fixed.
        self._address_fixed = False
        #: Whether the mount checks (add_check) have passed.
        self._checked = False
        self._dispatcher: Dispatcher | None = None
        self._checks: list[Callable[[CallFlow], None]] = []
        self._hangup_listeners: list[Callable[[CallRequest], None]] = []
        self._endpoints: list[tuple[str, str, Callable[[], FlaskResponse], list[str]]] = []
        self.transfers = TransferPlanner(self, client=client, allowed_hosts=transfer_hosts)

    # -- declaring routes ---------------------------------------------------------

    def route(
        self,
        path: str,
        *,
        name: str | None = None,
        event: Event | str | None = None,
        status_callback: bool = False,
        replay_check: bool = True,
        sound: bool = False,
    ) -> Callable[[HandlerFunction], HandlerFunction]:
        """Declare ``handler`` as the route at ``path`` (sugar over :meth:`add_route`).

        With ``event``, the handler runs only for that ``Event`` on this path, and
        several handlers can share one URL (an answer URL that also gets Hangup).
        ``status_callback=True`` marks a URL whose answer Vobiz ignores (Dial
        ``callbackUrl``, hangup URL): it runs for every event and answers an empty 200 (an
        empty 503 when Vobiz should send it again: RetryLater, ``status_deadline``, the
        store down). ``replay_check=False`` is for a route whose answer is the same whoever
        asks and whenever (hold music, a static prompt): its signature is still checked,
        but not recorded, so a replay is harmless and it answers while the store is down.
        ``sound=True`` marks a URL Vobiz fetches only for audio (a Conference's
        ``wait_sound``, a Dial's ``dial_music`` or ``confirm_sound``): its handler may
        return only Play, Speak and Wait, and when it fails (or returns anything else) the
        route answers the flow's ``sound_fallback`` (silence by default), never the
        apology and Hangup that would cut off a caller on hold. A ``waitSound`` fetch
        (``Event=ConferenceRemoteSounds``) is answered so on any route.
        """

        if callable(path):
            # "@flow.route" without its path: the function would be taken as the path and
            # replaced by the decorator, and no route declared at all.
            raise ConfigurationError(
                f"write @flow.route('/path') with the route's path, not @flow.route on "
                f"{getattr(path, '__name__', path)!r}"
            )

        def decorator(handler: HandlerFunction) -> HandlerFunction:
            self.add_route(
                path,
                handler,
                name=name,
                event=event,
                status_callback=status_callback,
                replay_check=replay_check,
                sound=sound,
            )
            return handler

        return decorator

    def add_route(
        self,
        path: str,
        handler: Handler,
        *,
        name: str | None = None,
        event: Event | str | None = None,
        status_callback: bool = False,
        replay_check: bool = True,
        sound: bool = False,
    ) -> Route:
        """Register ``handler`` at ``path``; returns the route (see :meth:`route`)."""
        return _flow_routes.add_route(
            self,
            path,
            handler,
            name=name,
            event=event,
            status_callback=status_callback,
            replay_check=replay_check,
            sound=sound,
        )

    def add_check(self, check: Callable[[CallFlow], None]) -> None:
        """Run ``check(flow)`` when the flow is mounted; it raises ConfigurationError.

        Recipes use it to validate their whole graph (every option leads somewhere)
        once all routes are declared, before the first call arrives.
        """
        if self._mount_prefix is not None:
            # Its check would never run (a TransferTrigger made late, with no endpoint).
            raise ConfigurationError(
                f"flow {self.name!r} is already mounted; make recipes (and add checks) "
                "before register() or create_app()"
            )
        self._checks.append(check)
        self._checked = False  # a dispatcher made already (a simulator's) runs it next

    def add_hangup_listener(self, listener: Callable[[CallRequest], None]) -> None:
        """Run ``listener(call)`` on every ``Hangup`` webhook any route of the flow gets,
        before that route's own handler, whatever the route.

        Recipes use it to learn that a call they track has ended (a WarmTransfer's caller
        who hangs up before reaching the hold room sends no room event). A listener that
        fails is reported to ``on_error`` and changes nothing else. Added before the flow
        is mounted.
        """
        if self._dispatcher is not None:
            raise ConfigurationError(
                f"flow {self.name!r} is already mounted; add hangup listeners before "
                "register() or create_app()"
            )
        self._hangup_listeners.append(listener)

    def add_endpoint(
        self,
        path: str,
        view: Callable[[], FlaskResponse],
        *,
        name: str,
        methods: Sequence[str] = ("POST",),
    ) -> None:
        """Serve a plain Flask view (not a Vobiz webhook) beside the flow's routes."""
        _flow_routes.add_endpoint(self, path, view, name=name, methods=methods)

    def add_health_endpoint(self, path: str = "/_answerkit/health") -> None:
        """Serve ``GET path`` for a load balancer or an uptime monitor: 200
        ``{"status": "ok"}`` while the state store does what a webhook asks, else 503
        ``{"status": "unavailable"}`` (the cause is logged, not shown).

        A webhook route's own answer says nothing of this: with the store down (a wrong
        password, a full or read-only Redis) every call gets the fallback while the app
        answers every probe. The probe asks of the store what a webhook does: a replay
        record of two keys, an increment of a probe call's state and that call cleared
        (random keys, the record kept HEALTH_PROBE_TTL seconds). It takes no signature: it
        moves no call and shows nothing.
        """
        self.add_endpoint(
            path, health_view(self), name=endpoint_name("answerkit_health", path), methods=("GET",)
        )

    def __repr__(self) -> str:
        # Never the tokens: a repr ends up in logs and tracebacks.
        names = list(self._by_name)
        shown_names = ", ".join(names[:8]) + (
            f", ... ({len(names)} in all)" if len(names) > 8 else ""
        )
        return (
            f"CallFlow({self.name!r}, public_url={self.public_url!r}, verify={self.verify}, "
            f"routes: {shown_names or 'none'})"
        )

    @property
    def routes(self) -> list[Route]:
        """Every declared route, in declaration order."""
        return list(self._routes.values())

    def get_route(self, name_or_path: str) -> Route:
        """The route with this name (or path); ConfigurationError if there is none."""
        return _flow_routes.get_route(self, name_or_path)

    def is_own_url(self, url: str) -> bool:
        """Whether ``url`` is under the flow's public URL and the prefix it is mounted at:
        the same scheme, host (in any spelling) and port, and a path beneath."""
        return _flow_urls.is_own_url(self, url)

    def route_at_url(self, url: str) -> Route | None:
        """The route an absolute URL of the flow names (see :meth:`is_own_url`), or None."""
        return _flow_urls.route_at_url(self, url)

    # -- URLs -----------------------------------------------------------------------

    def url_for(self, name: str, /, **params: Any) -> str:
        """The absolute public URL of a route, with ``params`` as its query string.

        Placed in an element attribute, the ``&`` between parameters is escaped on
        rendering, so the URL reaches Vobiz intact.
        """
        return _flow_urls.url_for(self, name, params)

    # -- state ----------------------------------------------------------------------

    @property
    def handlers_saturated(self) -> bool:
        """True while every handler thread of this process runs a handler given up at its
        deadline: until one returns, each webhook gets the fallback at once (threaded
        serving; the health endpoint answers 503 meanwhile)."""
        return self._deadline.saturated

    @property
    def store(self) -> StateStore:
        """The per-call state store, opened on first use."""
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    spec = self._state_spec
                    self._store = spec if isinstance(spec, StateStore) else open_store(spec)
        return self._store

    @property
    def client(self) -> VobizClient:
        """The flow's REST client: the ``client=`` given, else one made on first use from
        ``VOBIZ_AUTH_ID``/``VOBIZ_AUTH_TOKEN`` (and ``VOBIZ_BASE_URL``). Handlers that call
        the API themselves (``flow.client.make_call(...)``, ``flow.client.hangup(...)``) should use
        it: a simulator made with a LocalVobiz (as the ``call_simulator`` fixture makes
        it), ``answerkit check`` and ``answerkit call`` lend the flow a local Vobiz API's
        client, and a simulator without one a client that refuses every request, while a
        ``VobizClient()`` of the handler's own would reach the real one."""
        return self.transfers.client

    # -- mounting on Flask ----------------------------------------------------------

    @contextmanager
    def standing_in(
        self, *, store: StateStore | None = None, client: VobizClient | None = None
    ) -> Iterator[None]:
        """Use ``store`` for the state and replay records, and ``client`` for the REST
        calls, instead of the flow's own while the block runs: a check or a local call must
        not write to production's store or move real calls. The stand-ins are the flow's
        for every thread meanwhile: do not run this in a process serving live webhooks."""
        with _flow_stand_ins.standing_in(self, store, client):
            yield

    def _use_stand_in(self) -> None:
        """Install the newest open stand-in's store and client, or the flow's own."""
        own_store, own_client = self._own
        store = next((st for st, _ in reversed(self._stand_ins) if st is not None), own_store)
        client = next((cl for _, cl in reversed(self._stand_ins) if cl is not None), own_client)
        self._store = store
        self.transfers.swap_client(client)

    def dispatcher(self, *, checks: bool = True) -> Dispatcher:
        """The flow's request pipeline; checks the security settings on first use, and the
        mount checks (add_check) unless ``checks`` is False: blueprint() leaves those to
        the registration, where the prefix the flow is served under is known."""
        if checks and not self._checked:
            self._run_checks()
        if self._dispatcher is None:
            verifier = signature_gate(self)
            self._dispatcher = Dispatcher(
                self.name,
                lambda: self.store,
                verifier,
                self._fallback_bytes,
                self._deadline,
                self.on_error,
                self.hangup_linger,
                self._sound_fallback_bytes,
                self.public_url,
                tuple(self._hangup_listeners),
            )
        return self._dispatcher

    def blueprint(self, url_prefix: str | None = None) -> Blueprint:
        """A Flask blueprint serving every route of the flow under ``url_prefix``."""
        return _flow_flask.make_blueprint(self, url_prefix)

    def _registered_at(self, state: BlueprintSetupState, made_with: Dispatcher) -> None:
        """Follow the prefix Flask serves the flow under (see
        :func:`answerkit._flow_flask.follow_registration`)."""
        _flow_flask.follow_registration(self, state, made_with)

    def _run_checks(self) -> None:
        for check in self._checks:
            check(self)
        self._checked = True

    def register(self, app: Flask, url_prefix: str | None = None, *, direct: bool = True) -> None:
        """Mount the flow's routes on an existing Flask app.

        With ``direct`` (the default) the routes are also answered straight from WSGI,
        before Flask's dispatch, whenever Flask has nothing to add (see
        :class:`~answerkit._wsgi.DirectRoutes`): a handler then reads ``call``, not
        ``flask.request``. ``direct=False`` serves every webhook through Flask's full
        request handling (request context, signals, error handlers).
        """
        _flow_flask.register(self, app, url_prefix, direct=direct)

    def create_app(self, url_prefix: str | None = None, *, direct: bool = True) -> Flask:
        """A new Flask app serving only this flow (``direct``: see :meth:`register`)."""
        app = Flask(self.name)
        self.register(app, url_prefix, direct=direct)
        return app

    # -- transfer -------------------------------------------------------------------

    @advise_keywords("CallFlow.transfer", _LEG_RENAMED)
    def transfer(
        self,
        call_uuid: str,
        aleg: str | None = None,
        bleg: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        method: str = "POST",
        client: VobizClient | None = None,
    ) -> TransferResult:
        """Move a live call's leg(s) onto routes of this flow (or allowed absolute URLs).

        Each leg names a route (``"hold"``) or an absolute URL; ``params`` become the
        route URLs' query string. Raises :class:`~answerkit.CallNotActiveError` when the
        call has ended; use :meth:`try_transfer` to get None instead.
        """
        return self.transfers.transfer(
            call_uuid, aleg=aleg, bleg=bleg, params=params, method=method, client=client
        )

    @advise_keywords("CallFlow.try_transfer", _LEG_RENAMED)
    def try_transfer(
        self,
        call_uuid: str,
        aleg: str | None = None,
        bleg: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        method: str = "POST",
        client: VobizClient | None = None,
    ) -> TransferResult | None:
        """Like :meth:`transfer`, but returns None when the call already ended."""
        return self.transfers.try_transfer(
            call_uuid, aleg=aleg, bleg=bleg, params=params, method=method, client=client
        )
