"""Finding elements in a document, for tests and for code that inspects a flow's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from answerkit._element import Element
from answerkit.elements import Dial, Speak

__all__ = ["dialed_numbers", "find", "find_all", "spoken_text", "walk"]

_E = TypeVar("_E", bound=Element)


def walk(root: Element) -> Iterator[Element]:
    """``root`` and every element below it, depth first, in document order."""
    yield root
    for child in root.children:
        yield from walk(child)


def find_all(root: Element, cls: type[_E]) -> list[_E]:
    """Every element of class ``cls`` in ``root`` (``root`` included), in document order."""
    return [el for el in walk(root) if isinstance(el, cls)]


def find(root: Element, cls: type[_E]) -> _E | None:
    """The first element of class ``cls`` in ``root``, or None."""
    for el in walk(root):
        if isinstance(el, cls):
            return el
    return None


def dialed_numbers(root: Element) -> list[str]:
    """What every Dial calls, in order: E.164 numbers and SIP URIs (the one-number shorthand
    included)."""
    out: list[str] = []
    for dial in find_all(root, Dial):
        if dial.text is not None:
            out.append(dial.text)
        out.extend(child.text or "" for child in dial.children)
    return out


def spoken_text(root: Element) -> list[str]:
    """The plain text of every Speak, in order (SSML markup removed)."""
    return [s.text for s in find_all(root, Speak)]
