"""Whose a parameter name is: one of Vobiz's fields (or SIP headers), or one of our own
route's query parameters.

On a GET callback Vobiz appends its fields to our route's query string (spec §2.0), so
the two must be told apart twice: when a URL of ours is built (:func:`check_own_names`
refuses a clashing name) and when a request is read (``CallRequest.query`` leaves Vobiz's
names out). Both follow from :data:`VOBIZ_FIELD_NAMES`, kept here apart from the request
so that URL builders need not know the request class.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from answerkit._params import ParamsLike, QueryParamError, collect
from answerkit._request_fields import _FIELDS

__all__ = ["VOBIZ_FIELD_NAMES", "check_own_names"]


_SIP_PREFIXES = ("x-vh-", "x-ph-")

#: The names of Vobiz's own fields: a GET callback appends them to our route's query string.
VOBIZ_FIELD_NAMES = frozenset(
    ("CallUUID", "Event", "From", "To", *(name for _a, names, _c in _FIELDS for name in names))
)


def _own_query(query: ParamsLike, method: str) -> Mapping[str, str]:
    """Our route's own query parameters. On a GET callback Vobiz's fields share the query
    string (spec §2.0); they are left out, so ``dict(call.query)`` passed on to ``url_for``
    or a transfer carries no stale CallUUID or Digits into the next URL."""
    own = collect(query)[0]
    if method.upper() == "GET":
        own = {
            k: v
            for k, v in own.items()
            if k not in VOBIZ_FIELD_NAMES and k[:5].lower() not in _SIP_PREFIXES
        }
    return MappingProxyType(own) if own else _NO_PARAMS


_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


def check_own_names(params: Mapping[str, Any]) -> None:
    """Raise QueryParamError for a parameter of one of our routes' URLs that a GET callback
    would mix up with a field of Vobiz's: any name Vobiz sends (spec §2), or a SIP header's.

    On GET, Vobiz appends its fields to the URL's query string (spec §2.0): ours by the same
    name would come first and be read as Vobiz's (a ``Digits`` of ours taken for the
    caller's key), and :attr:`~answerkit.request.CallRequest.query` leaves every such name out.
    """
    for name in params:
        if not isinstance(name, str):
            continue  # _query_item names the problem
        header = name[:5].lower() in _SIP_PREFIXES
        if name in VOBIZ_FIELD_NAMES or header:
            other = (name[5:] or "header") if header else name.lower()
            if other in VOBIZ_FIELD_NAMES:  # "Timestamp": "timestamp" is Vobiz's too
                other = f"my_{other}"
            raise QueryParamError(
                f"query parameter {name!r} has the name of a field Vobiz sends (spec §2); on "
                f"a GET callback the two would share the query string and yours be taken for "
                f"Vobiz's or lost: name yours otherwise (say {other!r})"
            )


def _sip_headers(params: Mapping[str, str]) -> Mapping[str, str]:
    found = {k: v for k, v in params.items() if k[:5].lower() in _SIP_PREFIXES}
    return MappingProxyType(found) if found else _NO_PARAMS
