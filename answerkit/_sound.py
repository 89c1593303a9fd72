"""What a sound URL may answer: the URLs Vobiz fetches only for audio to play.

``waitSound`` (a Conference member waiting for the room to start), ``dialMusic`` (the caller
while the Dial rings) and ``confirmSound`` (the agent before being bridged) must each return
a document made only of Play, Speak and Wait (spec §1.2, §2.5, §2.9). Shared by the
dispatcher (a route declared ``sound=True``), the flow's ``sound_fallback``, ``answerkit
check`` and the simulator, so that all four judge such a document alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from answerkit._element import Element

SOUND_TAGS = ("Play", "Speak", "Wait")

#: The attributes whose URL is fetched for a sound document, as the spec writes them.
SOUND_URL_ATTRIBUTES = ("waitSound", "dialMusic", "confirmSound")

#: Endings of a URL that names an audio file rather than a route answering VobizXML.
AUDIO_FILE_ENDINGS = (".mp3", ".wav", ".ogg", ".oga", ".m4a", ".aac", ".flac", ".ulaw", ".gsm")


def not_sound(doc: Element) -> list[str]:
    """The tags in ``doc`` (a Response) that a sound URL may not answer, in order."""
    return [child.tag for child in doc.children if child.tag not in SOUND_TAGS]


def not_sound_message(tags: list[str]) -> str:
    """Why a sound URL's document with ``tags`` in it is refused, and what to do."""
    return (
        f"a sound URL (waitSound, dialMusic, confirmSound) may answer only Play, Speak and "
        f"Wait, and this document has {', '.join(dict.fromkeys(tags))} (spec §1.2, §2.5, "
        f"§2.9): steer the call from its answer or action URLs instead"
    )


def names_audio_file(url: str) -> bool:
    """Whether ``url``'s path ends like an audio file's (query and fragment aside)."""
    path = url.split("#", 1)[0].split("?", 1)[0].lower()
    return path.endswith(AUDIO_FILE_ENDINGS)
