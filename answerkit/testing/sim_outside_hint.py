"""The note on a URL outside the simulated application that looks meant for it.

Such a URL is never requested (tests stay on loopback), so a slip in a document's URL
(a typo in the host, the app's host with another scheme or port) would show only as
callbacks that never reached the app. :func:`outside_hint` tells such a slip from
another server's URL, which gets no note.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from answerkit.testing.sim_handler_errors import _route_at

if TYPE_CHECKING:
    from answerkit.app import CallFlow
    from answerkit.testing.sim_transport import Router

__all__ = ["outside_hint"]


def outside_hint(router: Router, flow: CallFlow | None, url: str) -> str | None:
    """Why a URL outside the simulated application may be a slip for one inside it, or
    None: its host is the public URL's with another scheme, port or path, or one typo from
    it (``voice.exmaple.com`` for ``voice.example.com``). Such a URL is not requested, so a
    typo would otherwise show only as callbacks that never reached the app.

    Another server's URL gets no note, even when its path is one of the flow's routes
    (``https://crm.example.net/status``): ``/status`` or ``/events`` is as likely a path of
    any webhook receiver, and a note on every third-party callback would be noise.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # a malformed port or IPv6 address: no host to compare
        return None
    public = urlsplit(router.public_root)
    public_host = (public.hostname or "").rstrip(".")
    if not host or not public_host or parts.path in ("", "/"):
        return None  # a bare host says nothing of which of the app's paths was meant
    root = router.public_root
    path = _app_path(parts.path, public.path)
    if host == public_host:
        # Another port of the machine (localhost:9000/metrics), or a path beside the app's
        # (example.com/crm/hook when the app is example.com/voice), may be another service:
        # a note only when the path is one of the flow's routes.
        prefix = public.path.rstrip("/")
        beside = bool(prefix) and path == parts.path
        other = beside or _other_port(parts.scheme, port, public.scheme, public.port)
        if other and (flow is None or _route_at(flow, path) is None):
            return None
        why = "it names the app's host, but is not under the public URL"
    elif _near_host(host, public_host):
        why = f"its host {host} is close to the app's, {public_host} (a typo?)"
    else:
        return None
    return f"{url}: {why}: did you mean {root}{path}?"


_PORTS = {"https": 443, "http": 80}


def _other_port(scheme: str, port: int | None, public_scheme: str, public_port: int | None) -> bool:
    """True when the URL names a port of its own (not its scheme's default) that is not
    the public URL's: a server of its own, not the app reached by another scheme. With
    the public URL's scheme, the ports are compared with the defaults filled in
    (``http://localhost/metrics`` is port 80, another server than ``http://localhost:8000``)."""
    if scheme.lower() == public_scheme.lower():
        default = _PORTS.get(scheme.lower())
        return (port or default) != (public_port or default)
    if port is None or port == _PORTS.get(scheme.lower()):
        return False
    return port != (public_port or _PORTS.get(public_scheme.lower()))


def _near_host(host: str, public_host: str) -> bool:
    """True when ``host`` is ``public_host`` with one typo in one label: every other label
    the same, and the two spellings of that label longer than 3 characters (``api`` and
    ``app`` are two servers' names, not a slip) and 1 edit (or one swap of neighbours)
    apart, not only in digits (``voice1`` and ``voice2`` are numbered servers). Never for IP
    addresses: neighbours are other machines."""
    for name in (host, public_host):
        try:
            ipaddress.ip_address(name)
        except ValueError:
            continue
        return False
    mine, theirs = host.split("."), public_host.split(".")
    if len(mine) != len(theirs) or len(mine) < 2:
        return False
    differ = [(a, b) for a, b in zip(mine, theirs, strict=True) if a != b]
    if len(differ) != 1:
        return False
    a, b = differ[0]
    if _strip_digits(a) == _strip_digits(b):
        return False
    return min(len(a), len(b)) > 3 and _near(a, b, 1)


def _strip_digits(label: str) -> str:
    return "".join(ch for ch in label if not ch.isdigit())


def _app_path(path: str, public_path: str) -> str:
    """``path`` as a path of the app: without the public URL's own path in front."""
    prefix = public_path.rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :]
    return path or "/"


def _near(a: str, b: str, most: int = 2) -> bool:
    """True when ``a`` is at most ``most`` edits (insert, delete, replace, or swap of two
    neighbours) from ``b``: a slip of the keyboard, not another server's name."""
    if abs(len(a) - len(b)) > most:
        return False
    # Optimal string alignment distance, rows of the usual table.
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(current[j - 1] + 1, row[j] + 1, row[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return row[-1] <= most
