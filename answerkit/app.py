"""Call-flow routes on Flask: declare routes, mount them, build their URLs, transfer to them.

A :class:`CallFlow` is a set of webhook routes that share one public URL, one set of
auth tokens and one per-call state store. It mounts into a Flask app as a blueprint
(:meth:`CallFlow.register`) or makes its own app (:meth:`CallFlow.create_app`); the
request pipeline itself lives in :mod:`answerkit.dispatch` and knows nothing of Flask, and
:mod:`answerkit._wsgi` answers the flow's routes ahead of Flask's dispatch when Flask has
nothing to add.
"""

from __future__ import annotations

import decimal
import inspect
import json
import logging
import math
import numbers
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import SplitResult, quote, unquote, urlsplit

from flask import Blueprint, Flask
from flask import Response as FlaskResponse
from flask.blueprints import BlueprintSetupState
from flask.sansio.app import App

from answerkit import _local_run
from answerkit._params import QueryParamError, with_query
from answerkit._sound import not_sound, not_sound_message
from answerkit._wsgi import flask_view, install_direct_routes
from answerkit.client import TransferResult, VobizClient
from answerkit.dispatch import (
    DeadlineRunner,
    Dispatcher,
    ErrorHook,
    Handler,
    Route,
    SignatureGate,
)
from answerkit.elements import Hangup, Response, Speak
from answerkit.errors import ConfigurationError
from answerkit.request import CallRequest, Event, check_own_names
from answerkit.signature import base_url
from answerkit.state import StateStore
from answerkit.state_urls import (
    check_store_url,
    open_store,
    redact_url,
    sqlite_directory_problem,
)
from answerkit.transfer import TransferPlanner, canonical_host

log = logging.getLogger("answerkit")

#: A handler as declared: the decorator hands it back with its own type, so a handler
#: written ``-> Response`` stays one for a test that calls it, or a recipe given it.
H = TypeVar("H", bound=Handler)

DEFAULT_FALLBACK = Response(
    Speak("We are sorry, we could not complete your call. Please try again later."),
    Hangup(),
)

ENV_PUBLIC_URL = "ANSWERKIT_PUBLIC_URL"
ENV_AUTH_TOKEN = "VOBIZ_AUTH_TOKEN"
ENV_STATE_URL = "ANSWERKIT_STATE_URL"

#: A public URL's host[:port]: one host name (or [IPv6]), no spaces, commas or user info.
_NETLOC = re.compile(r"(?:[^\s,/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


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
        if (
            not isinstance(name, str)
            or not name
            or not name.replace("_", "").replace("-", "").isalnum()
        ):
            raise ConfigurationError(
                f"CallFlow name must be letters, digits, '-' or '_', got {name!r}"
            )
        _check_settings(
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
        self.public_url = _clean_public_url(public_url or os.environ.get(ENV_PUBLIC_URL))
        self.auth_tokens = _auth_tokens(auth_token)
        self.verify = verify
        self.trusted_proxies = trusted_proxies
        window = (
            float(replay_window)  # any real number; a Decimal is not a numbers.Real
            if isinstance(replay_window, (numbers.Real, decimal.Decimal))
            and not isinstance(replay_window, bool)
            else math.nan
        )
        if not (math.isfinite(window) and window > 0):
            # Checked here, not at the first webhook: the store refuses such a window, and
            # every signed webhook would get the fallback.
            raise ConfigurationError(
                f"replay_window must be a finite number of seconds above 0, got "
                f"{replay_window!r} (it is how long a signature is remembered as used)"
            )
        self.replay_window = window
        self.on_error = on_error
        if not (math.isfinite(hangup_linger) and hangup_linger >= 0):
            raise ConfigurationError(
                f"hangup_linger must be a finite number of seconds, 0 or more, got "
                f"{hangup_linger!r} (the store's TTL already bounds how long state lives)"
            )
        self.hangup_linger = float(hangup_linger)
        fallback_doc = fallback if fallback is not None else DEFAULT_FALLBACK
        # Rendered as a Response is (as a handler's answer is): a subclass's own to_bytes
        # is not trusted to check what it writes.
        self._fallback_bytes = Response.to_xml(fallback_doc).encode()
        self._sound_fallback_bytes = Response.to_xml(
            sound_fallback if sound_fallback is not None else Response()
        ).encode()
        self._state_spec = state if state is not None else os.environ.get(ENV_STATE_URL)
        if isinstance(self._state_spec, str):
            # Checked now, not opened: a URL naming no store would otherwise surface on
            # the first live call, as the apology on every answer.
            check_store_url(self._state_spec)
        self._store: StateStore | None = None
        self._store_lock = threading.Lock()
        # standing_in(): the open stand-ins, and the flow's own store and client meanwhile.
        self._stand_ins: list[tuple[StateStore | None, VobizClient | None]] = []
        self._own: tuple[StateStore | None, VobizClient | None] = (None, None)
        for what, limit in (("deadline", deadline), ("status_deadline", status_deadline)):
            if limit is not None and not (
                isinstance(limit, (int, float))
                and not isinstance(limit, bool)
                and limit >= 0
                and math.isfinite(limit)
            ):
                raise ConfigurationError(
                    f"{what} must be a number of seconds, got {limit!r} (deadline None or 0: "
                    "no limit; status_deadline None or 0: the same as deadline)"
                )
        # Status callbacks get the shorter of the two: Vobiz waits 3 s for them (§2.12).
        limits = [x for x in (deadline, status_deadline) if x]
        self._deadline = DeadlineRunner(deadline, status_seconds=min(limits) if limits else 0)
        self._routes: dict[str, Route] = {}
        self._by_name: dict[str, Route] = {}
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
    ) -> Callable[[H], H]:
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

        def decorator(handler: H) -> H:
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
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigurationError(f"route path must start with '/', got {path!r}")
        if not callable(handler):
            raise ConfigurationError(
                f"route {path!r}: the handler must be a function taking the CallRequest, "
                f"got {handler!r}"
            )
        if name == "":
            name = None  # as before: the handler's own name
        if name is not None and (not isinstance(name, str) or "." in name):
            # Flask takes the name as an endpoint name, where a dot separates blueprints.
            raise ConfigurationError(
                f"route {path!r}: name must be text without dots (it names a Flask "
                f"endpoint), got {name!r}"
            )
        event = _checked_event(path, event)
        # type(handler).__call__: an object whose __call__ is async def.
        if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            type(handler).__call__
        ):
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
        _check_served_path(path, "route")
        if self._dispatcher is not None:
            raise ConfigurationError(
                f"flow {self.name!r} is already mounted; declare route {path!r} before "
                "register() or create_app()"
            )
        event_key = event.value if isinstance(event, Event) else event
        # Everything is checked before anything is kept: a refused declaration leaves no
        # half-made route behind to be mounted, or to refuse the corrected one.
        if sound and status_callback:
            raise ConfigurationError(
                f"route {path!r}: a sound route answers a document of Play, Speak and Wait, "
                "and a status_callback route none; declare it as one or the other"
            )
        route = self._routes.get(path)
        if route is None:
            route_name = name or _default_name(handler, path)
            if any(route_name == taken or path == served for served, taken, *_ in self._endpoints):
                raise ConfigurationError(
                    f"flow {self.name!r}: route {route_name!r} at {path!r} would share the "
                    "path or the name of an endpoint (a TransferTrigger's, a health check's); "
                    "give it another name= or path"
                )
            if route_name in self._by_name:
                raise ConfigurationError(
                    f"flow {self.name!r} already has a route named {route_name!r} "
                    f"(at {self._by_name[route_name].path}); pass name= to tell them apart"
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
                    f"route {path!r}: sound is per URL, and its other handlers have "
                    f"sound={route.sound}"
                )
            if event_key in route.handlers:
                raise ConfigurationError(
                    f"route {path!r} already has a handler for "
                    f"{'every event' if event_key is None else 'event ' + repr(event_key)}"
                )
        if route is None:
            route = Route(
                route_name,
                path,
                status_callback=status_callback,
                replay_check=replay_check,
                sound=sound,
            )
            self._routes[path] = route
            self._by_name[route_name] = route
        elif name is not None and name != route.name and name not in self._by_name:
            self._by_name[name] = route
        route.handlers[event_key] = handler
        route.status_callback = route.status_callback or status_callback
        return route

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
        _check_served_path(path, "endpoint")
        if self._mount_prefix is not None:
            # The blueprint is built already: the endpoint would never be served (a 404).
            raise ConfigurationError(
                f"flow {self.name!r} is already mounted; add endpoint {path!r} (a "
                "TransferTrigger, say) before create_app() or register()"
            )
        for served, taken, *_ in self._endpoints:
            if served == path or taken == name:
                raise ConfigurationError(
                    f"flow {self.name!r} already serves an endpoint at {served!r} named "
                    f"{taken!r}; give each endpoint its own path= and name"
                )
        if name in self._by_name or path in self._routes:
            # The route would answer the endpoint's requests (a health probe, unsigned,
            # got the route's 403), or Flask would refuse the second name when mounted.
            raise ConfigurationError(
                f"flow {self.name!r}: endpoint {name!r} at {path!r} would share the path or "
                "the name of a route; give it its own path"
            )
        self._endpoints.append((path, name, view, list(methods)))

    def add_health_endpoint(self, path: str = "/_answerkit/health") -> None:
        """Serve ``GET path`` for a load balancer or an uptime monitor: 200
        ``{"status": "ok"}`` while the state store takes a write, else 503
        ``{"status": "unavailable"}`` (the cause is logged, not shown).

        A webhook route's own answer says nothing of this: with the store down (a wrong
        password, a full or read-only Redis) every call gets the fallback while the app
        answers every probe. The probe writes what a webhook writes first, a replay record
        (a random key, kept HEALTH_PROBE_TTL seconds). It takes no signature: it moves no
        call and shows nothing.
        """

        def health() -> FlaskResponse:
            try:
                self.store.remember_all([f"health:{uuid.uuid4().hex}"], HEALTH_PROBE_TTL)
            except Exception as exc:  # anything at all: the webhooks would fail the same way
                log.warning("flow %s: health check failed: the state store: %s", self.name, exc)
                return _health_answer("unavailable", 503)
            return _health_answer("ok", 200)

        self.add_endpoint(
            path, health, name=endpoint_name("answerkit_health", path), methods=("GET",)
        )

    @property
    def routes(self) -> list[Route]:
        """Every declared route, in declaration order."""
        return list(self._routes.values())

    def get_route(self, name_or_path: str) -> Route:
        """The route with this name (or path); ConfigurationError if there is none."""
        route = self._by_name.get(name_or_path) or self._routes.get(name_or_path)
        if route is None:
            known = ", ".join(sorted(self._by_name)) or "none declared"
            raise ConfigurationError(
                f"flow {self.name!r} has no route {name_or_path!r} (routes: {known})"
            )
        return route

    def is_own_url(self, url: str) -> bool:
        """Whether ``url`` is under the flow's public URL and the prefix it is mounted at:
        the same scheme, host (in any spelling) and port, and a path beneath."""
        if self.public_url is None:
            return False
        here, there = urlsplit(self.public_url + (self._mount_prefix or "")), urlsplit(url)
        try:
            same_port = _port_of(here) == _port_of(there)
        except ValueError:  # a port that is no number
            return False
        base = unquote(here.path).rstrip("/")
        path = unquote(there.path)
        return (
            here.scheme == there.scheme
            and canonical_host(here.hostname) == canonical_host(there.hostname)
            and same_port
            and (path == base or path.startswith(base + "/"))
        )

    def route_at_url(self, url: str) -> Route | None:
        """The route an absolute URL of the flow names (see :meth:`is_own_url`), or None."""
        if not self.is_own_url(url):
            return None
        base = unquote(urlsplit((self.public_url or "") + (self._mount_prefix or "")).path)
        return self._routes.get(unquote(urlsplit(url).path)[len(base.rstrip("/")) :])

    # -- URLs -----------------------------------------------------------------------

    def url_for(self, name: str, /, **params: Any) -> str:
        """The absolute public URL of a route, with ``params`` as its query string.

        Placed in an element attribute, the ``&`` between parameters is escaped on
        rendering, so the URL reaches Vobiz intact.
        """
        route = self.get_route(name)
        if self.public_url is None:
            raise ConfigurationError(
                f"flow {self.name!r} has no public URL: pass public_url= to CallFlow or "
                f"set {ENV_PUBLIC_URL} to the https address Vobiz reaches this app at"
            )
        try:
            check_own_names(params)
            path = _wire_path((self._mount_prefix or "") + route.path)
            return with_query(self.public_url + path, params)
        except QueryParamError as exc:
            raise ConfigurationError(f"url_for({name!r}): {exc}") from None

    # -- state ----------------------------------------------------------------------

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
        the API themselves (``flow.client.make_call(...)``, ``hangup_call``) should use
        it: the simulator, the ``call_simulator`` fixture and ``answerkit check`` lend the
        flow a local Vobiz API's client, while a ``VobizClient()`` of the handler's own
        would reach the real one."""
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
        # Stand-ins stack up (blocks on other threads may overlap and end in any order):
        # the newest one still open is in use, and the flow's own once none is.
        with self._store_lock:
            if not self._stand_ins:
                self._own = (self._store, self.transfers.peek_client())
            entry = (store, client)
            self._stand_ins.append(entry)
            self._use_stand_in()
        try:
            yield
        finally:
            with self._store_lock:
                self._stand_ins.remove(entry)
                self._use_stand_in()

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
            if self.public_url is not None and not _local_run.active():
                problem = _plain_http_problem(self.public_url)
                if problem is not None:
                    log.warning("flow %s: %s", self.name, problem)
            if isinstance(self._state_spec, str) and not _local_run.active():
                problem = sqlite_directory_problem(self._state_spec)
                if problem is not None:
                    log.warning("flow %s: %s", self.name, problem)
            verifier: SignatureGate | None = None
            if self.verify:
                if not self.auth_tokens:
                    raise ConfigurationError(
                        f"flow {self.name!r} has no auth token, so it cannot check that "
                        f"webhooks come from Vobiz: pass auth_token= or set {ENV_AUTH_TOKEN}; "
                        "to run without verification (local development only) pass verify=False"
                    )
                verifier = SignatureGate(
                    self.auth_tokens, self.public_url, self.trusted_proxies, self.replay_window
                )
                if verifier.needs_host and not _local_run.active():
                    # A signature proves only the URL it covers (spec §3.2): read from the
                    # request, that URL is whatever the sender put in its Host header.
                    log.warning(
                        "flow %s: no public_url, so signatures are checked against the URL "
                        "the request's Host header names: any URL Vobiz signed with these "
                        "tokens verifies here (a sub-account's callbacks signed with a "
                        "parent token among them); set public_url= or %s to the address "
                        "Vobiz calls",
                        self.name,
                        ENV_PUBLIC_URL,
                    )
            else:
                log.warning(
                    "flow %s: signature verification is OFF (verify=False): anyone who can "
                    "reach these URLs can drive your call flow",
                    self.name,
                )
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
        prefix = _clean_prefix(url_prefix)
        if self._mount_prefix is not None and prefix not in (
            self._mount_prefix,
            self._blueprint_prefix,
        ):
            raise ConfigurationError(
                f"flow {self.name!r} is already mounted at {self._mount_prefix or '/'!r}; "
                "one flow has one public address"
            )
        if self._mount_prefix is None:
            self._mount_prefix = self._blueprint_prefix = prefix
            try:
                dispatcher = self.dispatcher(checks=False)
            except BaseException:
                self._mount_prefix = self._blueprint_prefix = None
                raise
        else:
            dispatcher = self.dispatcher(checks=False)
        bp = Blueprint(self.name, __name__, url_prefix=prefix or None)
        # First, before the routes: a registration it refuses leaves no rule behind. It
        # knows the dispatcher its views were made with: after a refused registration the
        # flow makes another, and this blueprint's views would serve the routes of then.
        bp.record(lambda state: self._registered_at(state, dispatcher))
        for route in self._routes.values():
            bp.add_url_rule(
                route.path,
                endpoint=route.name,
                view_func=flask_view(dispatcher, route),
                methods=["GET", "POST"],
                strict_slashes=True,
            )
        for path, name, view, methods in self._endpoints:
            bp.add_url_rule(path, endpoint=name, view_func=view, methods=methods)
        # Kept on each app it is registered on, so that the command line finds the flows
        # an app factory made (flows_of).
        bp.record_once(lambda state: _record_flow(state.app, self))
        return bp

    def _registered_at(self, state: BlueprintSetupState, made_with: Dispatcher) -> None:
        """Follow the prefix Flask serves the flow under, which the blueprint's own may not
        be: ``register_blueprint(flow.blueprint(), url_prefix="/voice")``, or a blueprint
        nested in one with a prefix. url_for left it out, so every Gather action and
        Redirect it built led to a 404 (and the call was dropped).

        The mount checks run here, on the first registration: they build the flow's URLs
        (a TransferTrigger's routes= may name one), which carry the prefix."""
        if made_with is not self._dispatcher:
            _unrecord(state)
            raise ConfigurationError(
                f"flow {self.name!r}: this blueprint was made before a registration that was "
                "refused, and serves the routes of then; make a new one with flow.blueprint()"
            )
        served = _clean_prefix(state.url_prefix)
        if self._address_fixed and served == self._mount_prefix:
            return
        if self._address_fixed:
            raise ConfigurationError(
                f"flow {self.name!r} is served at {self._mount_prefix or '/'!r} already; "
                f"registering it at {served or '/'!r} too would give it two public addresses "
                "(url_for and the signature check know one): mount it once, or make a second "
                "CallFlow"
            )
        self._mount_prefix = served
        try:
            self._run_checks()
        except BaseException:
            # As if never mounted: the missing route a check names may still be declared,
            # and the app registers the flow again (the refused registration added no rule,
            # as this runs first; Flask had recorded the blueprint, which is taken back).
            self._mount_prefix = self._blueprint_prefix = None
            self._dispatcher = None
            _unrecord(state)
            raise
        self._address_fixed = True

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
        prefix = _clean_prefix(url_prefix)
        # The methods each path is served with (None: any method).
        taken: dict[str, set[str] | None] = {}
        for rule in app.url_map.iter_rules():
            served = taken.get(rule.rule, set())
            if rule.methods is None or served is None:
                taken[rule.rule] = None
            else:
                taken[rule.rule] = served | rule.methods
        for path, name, _view, methods in self._endpoints:
            if prefix + path not in taken:
                continue
            ours = {m.upper() for m in methods} | ({"HEAD"} if "GET" in methods else set())
            served = taken[prefix + path]
            # Flask picks the rule by method: a GET status page at the path of a POST
            # endpoint is no clash (OPTIONS, which Flask adds to every rule, is none either).
            if served is not None and not (ours & served) - {"OPTIONS"}:
                continue
            # Flask serves the rule registered first: this endpoint (a second flow's
            # TransferTrigger, say) would never be reached, and nothing would say so.
            raise ConfigurationError(
                f"flow {self.name!r}: endpoint {name!r} at {prefix + path!r} is already "
                "served by another view of this app for the same method; give it its own "
                "path= (a TransferTrigger per flow needs one)"
            )
        if self.name in app.blueprints:
            raise ConfigurationError(
                f"this app already has a flow (or blueprint) named {self.name!r}: give each "
                "CallFlow on one app its own name (CallFlow('sales', ...), CallFlow('support', "
                "...))"
            )
        app.register_blueprint(self.blueprint(url_prefix))
        if not direct:
            return
        dispatcher = self.dispatcher()
        if dispatcher.verifier is not None and dispatcher.verifier.needs_host:
            return  # no public URL: the signed URL depends on Werkzeug's reading of the host
        if app.url_map.host_matching or app.subdomain_matching:
            return  # Flask's routing depends on the host
        direct_routes = install_direct_routes(app)
        if direct_routes is None:
            return
        for route in self._routes.values():
            path = (self._mount_prefix or "") + route.path
            direct_routes.add(path, dispatcher, route, f"{self.name}.{route.name}")

    def create_app(self, url_prefix: str | None = None, *, direct: bool = True) -> Flask:
        """A new Flask app serving only this flow (``direct``: see :meth:`register`)."""
        app = Flask(self.name)
        self.register(app, url_prefix, direct=direct)
        return app

    # -- transfer -------------------------------------------------------------------

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


def _port_of(parts: SplitResult) -> int | None:
    """A URL's port, its scheme's default when it names none."""
    return parts.port or {"https": 443, "http": 80}.get(parts.scheme)


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

#: Seconds a health probe's replay record is kept (see CallFlow.add_health_endpoint).
HEALTH_PROBE_TTL = 5.0


def _health_answer(status: str, code: int) -> FlaskResponse:
    return FlaskResponse(
        json.dumps({"status": status}), code, mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip


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
    return path.strip("/").replace("/", "_") or "root"


def _auth_tokens(auth_token: object) -> tuple[str, ...]:
    """The flow's tokens: ``auth_token``, or ``VOBIZ_AUTH_TOKEN``, comma-separated."""
    tokens = auth_token if auth_token is not None else os.environ.get(ENV_AUTH_TOKEN, "")
    if isinstance(tokens, str):
        tokens = [t.strip() for t in tokens.split(",")]
    if isinstance(tokens, (bytes, bytearray)) or not isinstance(tokens, Iterable):
        raise ConfigurationError(
            f"auth_token must be text, or a list of texts for rotation, got "
            f"{type(tokens).__name__} (decode bytes first: token.decode())"
        )
    tokens = list(tokens)
    for t in tokens:
        if not isinstance(t, str):
            raise ConfigurationError(
                f"auth_token: every token must be text, got {type(t).__name__}"
            )
    return tuple(t for t in tokens if t)


def _check_settings(
    *,
    fallback: object,
    sound_fallback: object,
    trusted_proxies: object,
    hangup_linger: object,
    on_error: object,
    client: object,
    transfer_hosts: object,
    state: object,
) -> None:
    """CallFlow's settings of the wrong type, refused when the flow is made: each would
    otherwise fail on a live call (a webhook answered with the apology) or deep inside."""
    if fallback is not None and not isinstance(fallback, Response):
        raise ConfigurationError(
            f"fallback must be a Response, got {type(fallback).__name__}: wrap it, as in "
            "fallback=Response(Speak('Sorry, something went wrong.'), Hangup())"
        )
    if sound_fallback is not None:
        if not isinstance(sound_fallback, Response):
            raise ConfigurationError(
                f"sound_fallback must be a Response, got {type(sound_fallback).__name__}: "
                "wrap it, as in sound_fallback=Response(Play('https://...'))"
            )
        wrong = not_sound(sound_fallback)
        if wrong:
            raise ConfigurationError(f"sound_fallback: {not_sound_message(wrong)}")
    if (
        not isinstance(trusted_proxies, int)
        or isinstance(trusted_proxies, bool)
        or trusted_proxies < 0
    ):
        raise ConfigurationError(
            f"trusted_proxies must be a whole number, 0 or more (the proxy hops in front of "
            f"the app whose X-Forwarded-* headers are trusted), got {trusted_proxies!r}"
        )
    if not isinstance(hangup_linger, (numbers.Real, decimal.Decimal)) or isinstance(
        hangup_linger, bool
    ):
        raise ConfigurationError(
            f"hangup_linger must be a number of seconds, got {hangup_linger!r}"
        )
    if on_error is not None and not callable(on_error):
        raise ConfigurationError(
            f"on_error must be a function on_error(exc, call, route_name), got {on_error!r}"
        )
    if client is not None and not isinstance(client, VobizClient):
        raise ConfigurationError(
            f"client must be a VobizClient, got {type(client).__name__}: "
            "client=VobizClient(auth_id=..., auth_token=...)"
        )
    if isinstance(transfer_hosts, (str, bytes)) or not isinstance(transfer_hosts, Iterable):
        raise ConfigurationError(
            f"transfer_hosts must be a list of host names, such as "
            f"['crm.example.com'], got {transfer_hosts!r}"
        )
    if isinstance(state, type):
        raise ConfigurationError(
            f"state must be a store or a URL, got the class {state.__name__}: "
            f"pass an instance, state={state.__name__}()"
        )
    if state is not None and not isinstance(state, (str, StateStore)):
        raise ConfigurationError(
            f"state must be a StateStore or a URL such as 'sqlite:///calls.sqlite3', "
            f"'redis://localhost:6379/0' or 'memory://', got {state!r}"
        )


def _plain_http_problem(public_url: str) -> str | None:
    """Why an ``http://`` public URL will not do, unless it names this machine (a local
    test): Vobiz calls HTTPS URLs only (spec §2.0)."""
    parts = urlsplit(public_url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host in ("localhost", "::1") or host.startswith("127."):
        return None
    return (
        f"public_url {public_url!r} is plain http: Vobiz calls only https URLs (spec §2.0), "
        "so every URL url_for builds for it would fail; give the https address Vobiz reaches"
    )


def _clean_public_url(url: object) -> str | None:
    if not url:
        return None
    if not isinstance(url, str):
        raise ConfigurationError(
            f"public_url must be text such as 'https://voice.example.com', got {type(url).__name__}"
        )
    shown = repr(redact_url(url))  # a password given in it is never echoed
    parts = urlsplit(url.strip())
    if "@" in parts.netloc:
        # Spec §3.4: Vobiz's samples disagree on whether user:pass@ is part of the signed
        # URL, and every URL built from this one would hand the credentials to Vobiz.
        raise ConfigurationError(
            "public_url must not carry credentials (user:pass@): Vobiz's own samples "
            "disagree on whether they are signed (spec §3.4), and every URL answerkit gives "
            "Vobiz would carry them; protect the routes with the signature check instead"
        )
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigurationError(
            f"public_url must be an absolute https URL such as https://voice.example.com, "
            f"got {shown}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"public_url must not carry a query or fragment, got {shown}")
    if any(c.isspace() or ord(c) < 0x20 for c in url.strip()) or not _NETLOC.fullmatch(
        parts.netloc
    ):
        raise ConfigurationError(
            f"public_url must name one host, with no spaces, commas or control characters "
            f"(https://voice.example.com or https://voice.example.com:8443), got {shown}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ConfigurationError(f"public_url has a malformed port: {shown}") from None
    # The form the signature check verifies (host lowercased, no default port): every URL
    # url_for hands Vobiz is then the very string it signs.
    return base_url(f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}")


def _wire_path(path: str) -> str:
    """A route's path (as Flask matches it: decoded) as a URL carries it: "/menú" as
    "/men%C3%BA", "/50%off" as "/50%25off", "/a|b" as "/a%7Cb". The URL handed to Vobiz
    is then the one it sends and signs, whichever way it would have encoded the other
    (and a server that keeps the raw path, gunicorn, verifies what it received)."""
    return quote(path, safe="/:@!$&'()*+,;=")


def _clean_prefix(prefix: str | None) -> str:
    if not prefix or prefix == "/":
        return ""
    return "/" + prefix.strip("/")
