"""What a developer coming from plivo-python reaches for first, answered with the answerkit
way: a handler that returns a plivoxml element or a web framework's response.

Only an error path comes here: the dispatcher asks about a result that is not a Response.
(plivoxml's builder methods on an element, ``add_speak`` or ``to_string``, are answered
by the README's migration table, not here: an element class with ``__getattr__`` has
every attribute read go through a slower hook, 8% of an IVR menu's build.)
"""

from __future__ import annotations


def foreign_result_hint(result: object) -> str:
    """Advice for a handler that returned ``result``, not a Response: another library's
    XML element or a web framework's response, else nothing."""
    module = type(result).__module__
    if module.split(".")[0] in ("plivo", "vobiz") and type(result).__name__.endswith("Element"):
        return (
            "; an SDK's XML builder element (plivoxml's, vobizxml's) is not VobizXML "
            "answerkit can check: build the document with answerkit's elements (see the "
            "README's migration table), or pass its XML text to answerkit.parse()"
        )
    if module.startswith(("flask", "werkzeug", "django", "starlette")):
        return (
            "; return the Response document itself: answerkit renders it and sets the content type"
        )
    return ""
