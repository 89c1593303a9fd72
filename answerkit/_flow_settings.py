"""CallFlow's settings, checked when the flow is made and when its pipeline is first made.

Every setting that would otherwise fail on a live call (a webhook answered with the
apology) or deep inside is refused here, with a message that says how to write it: the
flow's name, the types of its settings, its public URL, auth tokens and state URL, the
replay window, the hang-up linger and the deadlines. What is allowed but unwise (a
plain-http public URL, no public URL, verification off) is logged once, when the signature
check is made.
"""

from __future__ import annotations

import decimal
import logging
import math
import numbers
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from answerkit import _local_run
from answerkit._sound import not_sound, not_sound_message
from answerkit._state_values import MOST_SECONDS
from answerkit._xmltext import names_this_machine
from answerkit.client import VobizClient, token_flaw
from answerkit.dispatch import DeadlineRunner, SignatureGate
from answerkit.elements import Response
from answerkit.errors import ConfigurationError
from answerkit.signature import base_url
from answerkit.state import StateStore
from answerkit.state_urls import check_store_url, redact_url, sqlite_directory_problem

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = logging.getLogger("answerkit")

ENV_PUBLIC_URL = "ANSWERKIT_PUBLIC_URL"
ENV_AUTH_TOKEN = "VOBIZ_AUTH_TOKEN"
ENV_STATE_URL = "ANSWERKIT_STATE_URL"

#: A public URL's host[:port]: one host name (or [IPv6]), no spaces, commas or user info.
_NETLOC = re.compile(r"(?:[^\s,/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


def check_flow_name(name: object) -> None:
    """Refuse a CallFlow name that is not letters, digits, '-' or '_' (it names the
    flow's blueprint)."""
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("_", "").replace("-", "").isalnum()
    ):
        raise ConfigurationError(f"CallFlow name must be letters, digits, '-' or '_', got {name!r}")


def checked_replay_window(replay_window: object) -> float:
    """``replay_window`` as seconds, refused unless a finite number above 0."""
    window = (
        float(replay_window)  # any real number; a Decimal is not a numbers.Real
        if isinstance(replay_window, (numbers.Real, decimal.Decimal))
        and not isinstance(replay_window, bool)
        else math.nan
    )
    if not (math.isfinite(window) and 0 < window <= MOST_SECONDS):
        # Checked here, not at the first webhook: the store refuses such a window, and
        # every signed webhook would get the fallback.
        raise ConfigurationError(
            f"replay_window must be a finite number of seconds above 0 and at most "
            f"{MOST_SECONDS:g} (100 years), got {replay_window!r} (it is how long a "
            "signature is remembered as used)"
        )
    return window


def checked_hangup_linger(hangup_linger: float) -> float:
    """``hangup_linger`` (a number, see check_settings) as seconds, refused unless finite
    and 0 or more."""
    if not (math.isfinite(hangup_linger) and hangup_linger >= 0):
        raise ConfigurationError(
            f"hangup_linger must be a finite number of seconds, 0 or more, got "
            f"{hangup_linger!r} (the store's TTL already bounds how long state lives)"
        )
    return float(hangup_linger)


def state_spec(state: str | StateStore | None) -> str | StateStore | None:
    """The flow's store, or the URL to open it from: ``state``, or ``ANSWERKIT_STATE_URL``."""
    spec = state if state is not None else os.environ.get(ENV_STATE_URL)
    if isinstance(spec, str):
        # Checked now, not opened: a URL naming no store would otherwise surface on
        # the first live call, as the apology on every answer.
        check_store_url(spec)
    return spec


def deadline_runner(deadline: float | None, status_deadline: float | None) -> DeadlineRunner:
    """What runs the flow's handlers against its deadlines, once they are checked: each a
    finite number of seconds, 0 or more, or None."""
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
    return DeadlineRunner(deadline, status_seconds=min(limits) if limits else 0)


def flow_auth_tokens(auth_token: object) -> tuple[str, ...]:
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
    # Stripped like the comma-separated form: a token read from a secrets file ends in a
    # newline, and would refuse every webhook with a 403 that blames the token.
    kept = tuple(t.strip() for t in tokens if t.strip())
    for i, token in enumerate(kept):
        # A list's item is taken whole (a string is split on commas): "new,old" in one
        # item was one token no signature matches.
        flaw = "it holds a ',': give each token as its own item" if "," in token else None
        flaw = flaw or token_flaw(token)
        if flaw is not None:
            # Taken, it would refuse every genuine webhook with a 403 (the caller dropped)
            # and a log line about a signature mismatch. Never echoed: where, not what.
            which = f"token {i + 1} of {len(kept)}" if len(kept) > 1 else "the token"
            source = "auth_token" if auth_token is not None else ENV_AUTH_TOKEN
            raise ConfigurationError(f"{source}: {which}: {flaw}")
    return kept


def check_settings(
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
    if urlsplit(public_url).scheme != "http" or names_this_machine(public_url):
        return None
    return (
        f"public_url {public_url!r} is plain http: Vobiz calls only https URLs (spec §2.0), "
        "so every URL url_for builds for it would fail; give the https address Vobiz reaches"
    )


def clean_public_url(url: object) -> str | None:
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
        # Named, not quoted: a query may hold a secret (?token=...), so the URL is shown
        # without either.
        extra = " and ".join(
            part
            for part, there in (
                ("a query (?...)", parts.query),
                ("a fragment (#...)", parts.fragment),
            )
            if there
        )
        base = repr(parts._replace(query="", fragment="").geturl())
        raise ConfigurationError(
            f"public_url must not carry a query or fragment; {base} has {extra}: give the "
            "base URL alone, such as 'https://voice.example.com'"
        )
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


def signature_gate(flow: CallFlow) -> SignatureGate | None:
    """The flow's signature check (None with ``verify=False``), made when its pipeline is:
    a missing auth token refused, and settings that are allowed but unwise logged."""
    if flow.public_url is not None and not _local_run.active():
        problem = _plain_http_problem(flow.public_url)
        if problem is not None:
            log.warning("flow %s: %s", flow.name, problem)
    if isinstance(flow._state_spec, str) and not _local_run.active():
        problem = sqlite_directory_problem(flow._state_spec)
        if problem is not None:
            log.warning("flow %s: %s", flow.name, problem)
    verifier: SignatureGate | None = None
    if flow.verify:
        if not flow.auth_tokens:
            raise ConfigurationError(
                f"flow {flow.name!r} has no auth token, so it cannot check that "
                f"webhooks come from Vobiz: pass auth_token= or set {ENV_AUTH_TOKEN}; "
                "to run without verification (local development only) pass verify=False"
            )
        verifier = SignatureGate(
            flow.auth_tokens, flow.public_url, flow.trusted_proxies, flow.replay_window
        )
        if verifier.needs_host and not _local_run.active():
            # A signature proves only the URL it covers (spec §3.2): read from the
            # request, that URL is whatever the sender put in its Host header.
            log.warning(
                "flow %s: no public_url, so signatures are checked against the URL "
                "read from the request's %s: any URL Vobiz signed with these "
                "tokens verifies here (a sub-account's callbacks signed with a "
                "parent token among them), and flow.url_for (a Gather's action, say), "
                "flow.transfer and the recipes raise ConfigurationError on every call "
                "that uses them; set public_url= or %s to the address Vobiz calls",
                flow.name,
                "X-Forwarded-Proto/-Host" if flow.trusted_proxies else "Host header",
                ENV_PUBLIC_URL,
            )
    else:
        log.warning(
            "flow %s: signature verification is OFF (verify=False): anyone who can "
            "reach these URLs can drive your call flow",
            flow.name,
        )
    return verifier
