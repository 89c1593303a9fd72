"""What a developer coming from plivo-python reaches for first, answered with the answerkit
way: a builder method of plivoxml on an element (``add_speak``, ``to_string``, ``set_*``),
and a handler that returns a plivoxml element or a web framework's response.

Only error paths come here: ``Element.__getattr__`` runs once normal lookup has failed,
and the dispatcher asks only about a result that is not a Response.
"""

from __future__ import annotations

#: plivoxml's add_<name> methods (and vobiz-python's), and the class to build instead.
_ADDED = {
    "speak": "Speak",
    "play": "Play",
    "wait": "Wait",
    "get_digits": "Gather",
    "get_input": "Gather",
    "gather": "Gather",
    "dial": "Dial",
    "number": "Number",
    "user": "User",
    "record": "Record",
    "conference": "Conference",
    "multi_party_call": "Conference",
    "redirect": "Redirect",
    "hangup": "Hangup",
    "pre_answer": "PreAnswer",
    "dtmf": "DTMF",
    "stream": "Stream",
    "audio_stream": "Stream",
}


def element_attribute_error(tag: str, name: str) -> AttributeError:
    """The AttributeError for ``name`` on a ``tag`` element, with the answerkit way when it
    is a plivoxml habit."""
    error = f"{tag!r} object has no attribute {name!r}"
    if name.startswith("add_") and name[4:] in _ADDED:
        cls = _ADDED[name[4:]]
        return AttributeError(
            f"{error}: build the child and add it, {tag.lower()}.add({cls}(...)), or pass it "
            f"positionally, {tag}({cls}(...)); add() returns the child, not the parent "
            "(plivoxml's returns the parent)"
        )
    if name in ("to_string", "to_xml_string", "toxml"):
        return AttributeError(f"{error}: use .to_xml() (or str(element))")
    if name.startswith("set_"):
        return AttributeError(
            f"{error}: attributes are keywords of the constructor ({tag}(..., "
            f"{name[4:]}=...)), checked when the element is built; an element does not "
            "change afterwards"
        )
    return AttributeError(error, name=name)


def foreign_result_hint(result: object) -> str:
    """Advice for a handler that returned ``result``, not a Response: another library's
    XML element or a web framework's response, else nothing."""
    module = type(result).__module__
    if module.startswith(("plivo", "vobiz")):
        return (
            "; a plivoxml element is not VobizXML answerkit can check: build the document "
            "with answerkit's elements (see the README's migration table), or pass its "
            "XML text to answerkit.parse()"
        )
    if module.startswith(("flask", "werkzeug", "django", "starlette")):
        return (
            "; return the Response document itself: answerkit renders it and sets the content type"
        )
    return ""
