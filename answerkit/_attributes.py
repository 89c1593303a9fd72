"""The attribute kinds of VobizXML (spec §1.2), and :class:`Table`: the attributes of one
element, in the spec's table order, which is the rendering order; :func:`attr_string`
renders them.

This module is where the rest of answerkit imports the kinds from. Each lives with its
kind of check: :class:`Attr`, the base of them all (names, errors, rendering, memos), in
answerkit/_attributes_base.py; the kinds whose values come from a closed set (booleans,
integer ranges, enumerations) in answerkit/_attributes_choices.py; the kinds whose strings
are checked by their shape (patterns, free text, URLs, hints, key=value lists) in
answerkit/_attributes_text.py. The tables of the elements are answerkit/_tables.py.
"""

from __future__ import annotations

from collections.abc import Callable

from answerkit._attributes_base import Attr as Attr
from answerkit._attributes_choices import Bool as Bool
from answerkit._attributes_choices import EndTimeout as EndTimeout
from answerkit._attributes_choices import Enum as Enum
from answerkit._attributes_choices import Int as Int
from answerkit._attributes_choices import Method as Method
from answerkit._attributes_text import URL as URL
from answerkit._attributes_text import Hints as Hints
from answerkit._attributes_text import KeyValues as KeyValues
from answerkit._attributes_text import Pattern as Pattern
from answerkit._attributes_text import Text as Text


def attr_string(attrs: dict[str, str], escapers: dict[str, Callable[[str], str]]) -> str:
    """`` name="value"`` for each attribute, in the dict's (table) order."""
    s = ""
    for k, v in attrs.items():
        e = escapers.get(k)
        s += f' {k}="{v if e is None else e(v)}"'
    return s


class Table(dict[str, Attr]):
    """The attributes of one element keyed by Python name, in rendering order."""

    def __init__(self, element: str, *attrs: Attr) -> None:
        super().__init__()
        self.element = element
        self.by_xml: dict[str, Attr] = {}
        self.index: dict[str, int] = {}
        for i, a in enumerate(attrs):
            a.element = element
            a.pos = i
            self[a.py] = a
            self.by_xml[a.xml] = a
            self.index[a.xml] = i
        self.escapers = {a.xml: a.escape for a in attrs if a.escape is not None}
        #: Python name -> that attribute's bound ``frag``: a plain dict, so a constructor
        #: reaches any of them in one specialised lookup.
        self.frag: dict[str, Callable[[object], str]] = {a.py: a.frag for a in attrs}
