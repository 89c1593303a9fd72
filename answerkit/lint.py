"""Advice on a valid VobizXML document: defaults that surprise and features that do not work.

``Response.lint()`` returns :class:`LintWarning` items; none of them is an error (those are
raised by ``validate``). Each one cites the part of the spec it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from answerkit._sound import SOUND_URL_ATTRIBUTES, names_audio_file
from answerkit._tables import BUILDER_ONLY, GATHER_LANGUAGES, MAN_ONLY, WOMAN_ONLY
from answerkit._xmltext import names_this_machine

__all__ = ["LintWarning", "lint"]

if TYPE_CHECKING:
    from answerkit._element import Element
    from answerkit.elements import Response


#: An XML escape written into a value: the value was escaped before answerkit escaped it.
_ALREADY_ESCAPED = re.compile(r"&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);")
_URL_START = re.compile(r"(?:https?|wss?)://")
#: The elements whose text is a URL (a Speak's text that starts with one is words).
_URL_TEXT = frozenset(("Play", "Redirect", "Stream"))


@dataclass(frozen=True)
class LintWarning:
    """One piece of advice: the element's tag and what to consider."""

    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.element}: {self.message}"


def lint(doc: Response) -> list[LintWarning]:
    """Every warning for ``doc``, in document order."""
    out: list[LintWarning] = []
    kids = doc.children
    for i, el in enumerate(kids):
        after = kids[i + 1 :]
        _element(el, after, out)
        for child in el.children:
            _element(child, [], out)
    return out


def _element(el: Element, after: Sequence[Element], out: list[LintWarning]) -> None:
    tag = el.tag
    a = el.attrs

    def warn(message: str) -> None:
        out.append(LintWarning(tag, message))

    for name, value in a.items():
        if value.startswith("http://") and not names_this_machine(value):
            warn(f"{name} uses http://; Vobiz documents only https:// callbacks (spec §1.0)")
        elif value.startswith("ws://"):
            warn(f"{name} uses ws://, meant for local tests only")
        if name in SOUND_URL_ATTRIBUTES and names_audio_file(value):
            # Twilio's waitUrl and Plivo's hold-music habits take a file; Vobiz fetches a
            # document (spec §1.2) and an audio file there plays nothing.
            warn(
                f"{name} names an audio file; Vobiz fetches a VobizXML document there (Play, "
                f"Speak and Wait only): serve a route answering Response(Play({value!r})) "
                f"and give its URL (a route declared with sound=True)"
            )
    text = el.text or ""
    url_text = ("the URL", text) if tag in _URL_TEXT else ("", "")
    for name, value in (*a.items(), url_text):
        escape = _ALREADY_ESCAPED.search(value) if _URL_START.match(value) else None
        if escape is not None:
            # Pasted from hand-written XML: answerkit escapes '&' as it renders, so '&amp;'
            # reaches Vobiz as '&amp;' and its next parameter arrives named 'amp;b'.
            warn(
                f"{name} holds an XML escape ({escape.group()!r}): write the plain character "
                "('&' between parameters); answerkit escapes it as it renders, and Vobiz "
                "would call the URL with the escape in it"
            )
    if text.startswith("http://") and not names_this_machine(text):
        warn("the URL uses http://; Vobiz documents only https:// (spec §1.0)")
    if tag == "Stream" and text.startswith("ws://"):
        warn("ws:// is for local tests only; use wss:// on Vobiz")

    if tag == "Speak":
        language = a.get("language", "en-US")
        voice = a.get("voice", "WOMAN")
        if (voice == "MAN" and language in WOMAN_ONLY) or (
            voice == "WOMAN" and language in MAN_ONLY
        ):
            warn(f"{language} has no {voice} voice; Vobiz falls back to the other one")
        if language in BUILDER_ONLY:
            warn(
                f"{language} is offered by Vobiz's XML builder but missing from the Speak "
                "voice table (spec §6 item 14); check it on a live call"
            )
    elif tag == "Gather":
        input_type = a.get("inputType")
        if any(child.attrs.get("loop") == "0" for child in el.children):
            warn(
                "a prompt with loop=0 plays for ever, and executionTimeout starts only when "
                "the prompts end (spec §1.2): a silent caller is never timed out; give the "
                "prompt a loop count"
            )
        if input_type is None:
            warn("no input_type: its default is undocumented (spec §6 item 3); set 'dtmf'")
        if not after:
            warn(
                "nothing follows the Gather: on a timeout Vobiz may move on and end the call "
                "(spec §6 item 2); add fallback elements after it"
            )
        if "speech" in (input_type or "") and a.get("language", "en-US") not in GATHER_LANGUAGES:
            warn(f"speech language {a['language']!r} is not on the known recognition list")
        if input_type == "dtmf":
            # The interim callback gets partial transcripts (spec §2.4): speech only too.
            for name in (
                "speechEndTimeout",
                "speechModel",
                "hints",
                "profanityFilter",
                "interimSpeechResultsCallback",
            ):
                if name in a:
                    warn(f"{name} only applies to speech input; input_type is 'dtmf'")
        if input_type == "speech" and "digitEndTimeout" in a:
            warn("digitEndTimeout only applies to dtmf input; input_type is 'speech'")
    elif tag == "Dial":
        if "callerId" not in a:
            warn(
                "no caller_id: inbound-call transfers fail without a number the account owns "
                "(spec §1.2)"
            )
        elif not a["callerId"].startswith("+"):
            # Taken without it (Vobiz writes numbers so in webhooks), but the Dial table
            # asks for E.164, as Number does.
            warn(f"caller_id {a['callerId']!r} has no '+': write it in E.164, '+{a['callerId']}'")
        if "timeout" not in a:
            warn("no timeout: the B-leg rings for about 120 s; set it explicitly")
        if "confirmKey" in a:
            warn("confirmKey enforcement is unverified by Vobiz; do not rely on it as a gate")
        if ("confirmKey" in a or "confirmSound" in a) and "confirmTimeout" not in a:
            warn("no confirm_timeout: its default is undocumented; set it explicitly")
        if int(a.get("timeLimit", "0")) >= 86400:
            warn("time_limit of 24 h or more is cut to 24 h")
        if el.text is not None:
            warn("one number as text works, but Number(...) children are preferred")
        # A Hangup alone after it ends the call either way; anything else may be heard.
        heard_after = any(e.tag != "Hangup" for e in after)
        if heard_after and ("action" not in a or a.get("redirect") == "false"):
            warn(
                "the elements after the Dial may run after a completed call too, not only "
                "when nobody answered (the sources disagree, spec §6 item 9); give an action "
                "and branch on DialStatus"
            )
    elif tag == "Conference":
        if a.get("stayAlone") != "true":
            warn(
                "stayAlone defaults to false on Vobiz: a lone member is disconnected; set "
                "stay_alone=True on any leg that may arrive first"
            )
        if a.get("record") == "true":
            warn("record produces no file today; use Record(record_session=True) before it")
        if "maxParticipants" in a:
            warn("maxParticipants is not effective: the account cap wins")
        if "waitMethod" in a:
            warn("waitMethod is not implemented: the wait_sound fetch is always POST")
        if "action" in a:
            warn("action is not reliably invoked when the leg leaves; use callback_url")
    elif tag == "Record":
        if "callbackUrl" not in a:
            warn(
                "no callback_url: the recording's file and length arrive only there "
                "(RecordStop, spec §2.6); the action is called as the recording starts, "
                "without them (unlike Plivo's)"
            )
        if "action" not in a:
            redirect_false = a.get("redirect", "false") == "false"
            warn(
                "no action: give one that answers an empty Response (spec §6 item 6)"
                + ("; with redirect false it must not return instructions" if redirect_false
                   else "")
            )  # fmt: skip
    elif tag == "Hangup":
        if "schedule" in a and not after:
            warn("schedule needs an element after it (Speak, Play, Wait), or the call ends now")
    elif tag == "Stream":
        if a.get("keepCallAlive") != "true" and not after:
            warn("nothing follows the Stream and keep_call_alive is off: the call ends at once")
    elif tag == "Wait":
        if "minSilence" in a and a.get("silence") != "true":
            warn("min_silence is only used with silence=True")
        if a.get("beep") == "true" and a.get("silence") == "true":
            warn("beep is only evaluated when silence detection is off (silence=True here)")
    if "sipHeaders" in a:  # Dial or User
        warn(
            "the sipHeaders key syntax is contested (Reason=billing, or ReasonX-VH=billing; "
            "spec §6 item 4), and a set Vobiz does not take is dropped silently: check the "
            "X-VH- headers arrive on a live call"
        )
    if tag in ("Dial", "Conference"):
        for e in after:
            if e.tag == "Record" and e.get("recordSession") == "true":
                out.append(
                    LintWarning(
                        "Record",
                        f"record_session after {tag} starts only when the {tag} ends; "
                        f"place it before the {tag}",
                    )
                )
                break
