"""What the Vobiz REST API answers, as typed results (spec §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CallCreated", "LiveCall", "TransferResult"]


@dataclass(frozen=True)
class TransferResult:
    """Vobiz accepted a transfer (202). The new XML is fetched afterwards, asynchronously."""

    api_id: str | None
    message: str | None
    #: The documented body has ``call_uuid``; a Vobiz example uses a ``call_uuids`` list (§6.10).
    call_uuids: tuple[str, ...]
    raw: object = field(repr=False, default=None)  # the decoded body, as Vobiz sent it

    @property
    def call_uuid(self) -> str | None:
        """The first transferred call UUID, or None when the body named none."""
        return self.call_uuids[0] if self.call_uuids else None


@dataclass(frozen=True)
class LiveCall:
    """A live call as ``GET …/Call/{uuid}/?status=live`` describes it."""

    call_uuid: str
    call_status: str | None
    api_id: str | None = None
    request_uuid: str | None = None
    caller_name: str | None = None
    direction: str | None = None
    from_: str | None = None
    to: str | None = None
    session_start: str | None = None
    stir_attestation: str | None = None
    stir_verification: str | None = None
    raw: Mapping[str, object] = field(repr=False, default_factory=dict)

    @property
    def in_progress(self) -> bool:
        """True while the call is answered and may be transferred."""
        return self.call_status == "in-progress"


@dataclass(frozen=True)
class CallCreated:
    """Vobiz queued an outbound call. Success means queued, not answered."""

    api_id: str | None
    message: str | None
    #: One UUID per destination; equal to the ``CallUUID`` the webhooks will carry.
    request_uuids: tuple[str, ...]
    raw: object = field(repr=False, default=None)  # the decoded body, as Vobiz sent it

    @property
    def request_uuid(self) -> str | None:
        """The first request UUID, or None when the body named none."""
        return self.request_uuids[0] if self.request_uuids else None


def text_field(value: object) -> str | None:
    """A string field of a response body, or None (bodies vary: spec §4.0)."""
    return value if isinstance(value, str) else None


def uuid_list(value: object) -> tuple[str, ...]:
    """UUIDs given as one string or as a list (both shapes occur: spec §6 item 10)."""
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()
