"""The sounds a simulated call fetches while it waits: dialMusic, confirmSound, waitSound.

Vobiz fetches such a URL and plays the Speak, Play and Wait of the document it answers
(spec §1.2); an answer it could not play is the application's error, recorded in the
transcript. Apart from the elements because both ``<Dial>``
(:mod:`~answerkit.testing.sim_dial`, :mod:`~answerkit.testing.sim_bridge`) and
``<Conference>`` (:mod:`~answerkit.testing.sim_conference`) fetch them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from answerkit._sound import not_sound, not_sound_message
from answerkit.errors import AnswerkitError
from answerkit.parse import parse
from answerkit.testing.sim_elements import hear, wait

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall


def _play_fetched(
    call: SimulatedCall,
    attribute: str,
    url: str,
    event: str | None,
    extra: dict[str, str],
    audible: bool = True,
) -> None:
    """Fetch a sound URL (``attribute``: dialMusic, confirmSound, waitSound) and play its
    Speak/Play/Wait. An answer Vobiz could not play is the application's error: an HTTP
    error (an audio file's URL given where a document is fetched, a wrong path), a body
    that is not VobizXML, or elements other than Play, Speak and Wait (spec §1.2)."""
    hook = call._send(url, "POST", call._params(event, extra))
    if hook.status == 0:  # outside the simulated application: nothing was fetched
        return
    where = f"the {attribute} URL {call._display(url)}"
    if not hook.ok:
        _sound_error(
            call,
            f"{where} answered HTTP {hook.status}: it must answer a VobizXML "
            "document of Play, Speak and Wait (an audio file goes in a Play there)",
        )
        return
    try:
        doc = parse(hook.body)
    except (AnswerkitError, ValueError) as exc:
        _sound_error(call, f"{where} answered no valid VobizXML: {exc}")
        return
    wrong = not_sound(doc)
    if wrong:
        _sound_error(call, f"{where}: {not_sound_message(wrong)}; Vobiz would not play it")
        return
    if attribute == "waitSound" and any(c.tag == "Play" for c in doc.children):
        # Played here, as Plivo does; Vobiz's pages name only Speak and Wait for a wait
        # sound (spec §1.2): a note, so a test's author knows what rests on that reading.
        call._emit(
            "note",
            f"{where} answered a Play: Vobiz documents Speak and Wait for a wait sound, "
            "Play only on Plivo's word (spec §1.2)",
        )
    if not audible:
        return
    for child in doc.children:
        if child.tag in ("Speak", "Play"):
            hear(call, child)
        elif child.tag == "Wait":
            wait(call, child, first=False)


def _sound_error(call: SimulatedCall, error: str) -> None:
    call.transcript.handler_errors.append(error)
    call._emit("error", f"handler error: {error}")
