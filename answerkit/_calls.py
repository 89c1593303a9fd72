"""Elements that connect or capture the call: Dial (with Number and User), Conference, Record
and Stream (spec §1.2). Re-exported by :mod:`answerkit.elements`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from answerkit import _tables as _t
from answerkit._attributes import esc_text
from answerkit._element import _NOATTRS, Element, _Container, _TextElement
from answerkit._tables import TEXTS
from answerkit.errors import ElementError

_E = TypeVar("_E", bound=Element)


class Dial(_Container):
    """Call one or more Number/User B-legs at once and bridge the first to answer.

    Give ``caller_id`` (an E.164 number of the account): without it inbound-call transfers
    fail. The shorthand ``Dial("+14156667890")`` (one number as text) is accepted; explicit
    ``Number`` children are preferred. Record is not accepted as a child (spec §6 item 7).
    ``sip_headers`` takes ``"k=v,k2=v2"`` or a mapping; keys are written as given (spec §6
    item 4): ``Reason`` and ``ReasonX-VH`` both pass, values are ``[A-Za-z0-9]``.
    """

    __slots__ = ("_text",)
    tag = "Dial"
    _table = _t.DIAL
    _ruled = True
    _text: str | None

    def __init__(
        self,
        *children: Number | User | str,
        action: str | None = None,
        method: str | None = None,
        callback_url: str | None = None,
        callback_method: str | None = None,
        redirect: bool | None = None,
        caller_id: str | None = None,
        caller_name: str | None = None,
        timeout: int | None = None,
        time_limit: int | None = None,
        hangup_on_star: bool | None = None,
        dial_music: str | None = None,
        confirm_sound: str | None = None,
        confirm_key: str | None = None,
        confirm_timeout: int | None = None,
        digits_match: str | None = None,
        digits_match_b_leg: str | None = None,
        sip_headers: str | Mapping[str, str] | None = None,
    ) -> None:
        t = _t.DIAL
        a: dict[str, str] = {}
        s = ""
        if action is not None:
            s += t["action"].put(a, action)
        if method is not None:
            s += t["method"].put(a, method)
        if callback_url is not None:
            s += t["callback_url"].put(a, callback_url)
        if callback_method is not None:
            s += t["callback_method"].put(a, callback_method)
        if redirect is not None:
            s += t["redirect"].put(a, redirect)
        if caller_id is not None:
            s += t["caller_id"].put(a, caller_id)
        if caller_name is not None:
            s += t["caller_name"].put(a, caller_name)
        if timeout is not None:
            s += t["timeout"].put(a, timeout)
        if time_limit is not None:
            s += t["time_limit"].put(a, time_limit)
        if hangup_on_star is not None:
            s += t["hangup_on_star"].put(a, hangup_on_star)
        if dial_music is not None:
            s += t["dial_music"].put(a, dial_music)
        if confirm_sound is not None:
            s += t["confirm_sound"].put(a, confirm_sound)
        if confirm_key is not None:
            s += t["confirm_key"].put(a, confirm_key)
        if confirm_timeout is not None:
            s += t["confirm_timeout"].put(a, confirm_timeout)
        if digits_match is not None:
            s += t["digits_match"].put(a, digits_match)
        if digits_match_b_leg is not None:
            s += t["digits_match_b_leg"].put(a, digits_match_b_leg)
        if sip_headers is not None:
            s += t["sip_headers"].put(a, sip_headers)
        self._attrs = a
        self._open = "<Dial" + s
        self._x = None
        self._text = None
        for c in children:
            if type(c) is not Number and type(c) is not User:
                if isinstance(children[0], str):
                    self._shorthand(children[0], len(children))
                else:
                    self._take(children)  # subclasses pass there; anything else raises
                return
        self._children = list(children)  # type: ignore[arg-type]

    def _shorthand(self, number: str, count: int) -> None:
        if count != 1:
            raise ElementError(
                "Dial: give either one number as text or Number/User children, not both",
                element="Dial",
            )
        self._text = TEXTS["Dial"].check(number)
        self._children = []

    @property
    def text(self) -> str | None:
        return self._text

    def add(self, child: _E) -> _E:
        if self._text is not None:
            raise ElementError(
                f"Dial: already dials {self._text!r} given as text; use Number children instead",
                element="Dial",
                value=child,
            )
        return super().add(child)

    def _key(self) -> tuple[object, ...]:
        return (self._attrs, self._text, self._children)

    def _args(self) -> list[str]:
        return [repr(self._text)] if self._text is not None else super()._args()

    def _render(self) -> str:
        if self._text is None:
            return super()._render()
        x = self._x = f"{self._head()}>{esc_text(self._text)}</Dial>"
        return x

    def _pretty(self, out: list[str], depth: int) -> None:
        if self._text is None:
            return super()._pretty(out, depth)
        return Element._pretty(self, out, depth)

    def _rule(self, index: int, last: int) -> str | None:
        if self._text is None and not self._children:
            return "needs at least one Number or User to dial (or one number as text)"
        return None

    @classmethod
    def _parsed(cls: type[_E], attrs: dict[str, str], text: str | None, kids: list[object]) -> _E:
        el = cls.__new__(cls)
        assert isinstance(el, Dial)
        el._attrs = attrs
        el._open = None
        el._x = None
        el._text = None
        if text and not text.isspace():
            el._shorthand(text, 1 + len(kids))
        else:
            el._take(kids)
        return el


class Number(_TextElement):
    """A phone number for Dial to call, in E.164 with ``+`` (``"+14156667890"``)."""

    __slots__ = ()
    tag = "Number"
    _table = _t.NUMBER

    def __init__(
        self,
        number: str,
        /,
        *,
        send_digits: str | None = None,
        send_on_preanswer: bool | None = None,
    ) -> None:
        self._text, e = TEXTS["Number"].take(number)
        if send_digits is None and send_on_preanswer is None:
            self._attrs = _NOATTRS
            self._x = "<Number>" + e + "</Number>"
            return
        a: dict[str, str] = {}
        s = ""
        if send_digits is not None:
            s += _t.NUMBER["send_digits"].put(a, send_digits)
        if send_on_preanswer is not None:
            s += _t.NUMBER["send_on_preanswer"].put(a, send_on_preanswer)
        self._attrs = a
        self._x = f"<Number{s}>{e}</Number>"


class User(_TextElement):
    """A SIP URI for Dial to call (``"sip:agent@example.com"``); there is no Sip element."""

    __slots__ = ()
    tag = "User"
    _table = _t.USER

    def __init__(
        self,
        uri: str,
        /,
        *,
        send_digits: str | None = None,
        send_on_preanswer: bool | None = None,
        sip_headers: str | Mapping[str, str] | None = None,
    ) -> None:
        self._text, e = TEXTS["User"].take(uri)
        if send_digits is None and send_on_preanswer is None and sip_headers is None:
            self._attrs = _NOATTRS
            self._x = "<User>" + e + "</User>"
            return
        a: dict[str, str] = {}
        s = ""
        if send_digits is not None:
            s += _t.USER["send_digits"].put(a, send_digits)
        if send_on_preanswer is not None:
            s += _t.USER["send_on_preanswer"].put(a, send_on_preanswer)
        if sip_headers is not None:
            s += _t.USER["sip_headers"].put(a, sip_headers)
        self._attrs = a
        self._x = f"<User{s}>{e}</User>"


class Record(Element):
    """Record the caller, or with ``record_session=True`` the whole call (place it first).

    ``redirect`` defaults to false here: then ``action`` must answer an empty Response. Give an
    ``action`` even for session recordings (spec §6 item 6; ``lint`` reminds you).
    """

    __slots__ = ()
    tag = "Record"
    _table = _t.RECORD

    def __init__(
        self,
        *,
        action: str | None = None,
        method: str | None = None,
        file_format: str | None = None,
        redirect: bool | None = None,
        timeout: int | None = None,
        max_length: int | None = None,
        play_beep: bool | None = None,
        finish_on_key: str | None = None,
        record_session: bool | None = None,
        start_on_dial_answer: bool | None = None,
        transcription_type: str | None = None,
        transcription_url: str | None = None,
        transcription_method: str | None = None,
        callback_url: str | None = None,
        callback_method: str | None = None,
    ) -> None:
        t = _t.RECORD
        a: dict[str, str] = {}
        s = ""
        if action is not None:
            s += t["action"].put(a, action)
        if method is not None:
            s += t["method"].put(a, method)
        if file_format is not None:
            s += t["file_format"].put(a, file_format)
        if redirect is not None:
            s += t["redirect"].put(a, redirect)
        if timeout is not None:
            s += t["timeout"].put(a, timeout)
        if max_length is not None:
            s += t["max_length"].put(a, max_length)
        if play_beep is not None:
            s += t["play_beep"].put(a, play_beep)
        if finish_on_key is not None:
            s += t["finish_on_key"].put(a, finish_on_key)
        if record_session is not None:
            s += t["record_session"].put(a, record_session)
        if start_on_dial_answer is not None:
            s += t["start_on_dial_answer"].put(a, start_on_dial_answer)
        if transcription_type is not None:
            s += t["transcription_type"].put(a, transcription_type)
        if transcription_url is not None:
            s += t["transcription_url"].put(a, transcription_url)
        if transcription_method is not None:
            s += t["transcription_method"].put(a, transcription_method)
        if callback_url is not None:
            s += t["callback_url"].put(a, callback_url)
        if callback_method is not None:
            s += t["callback_method"].put(a, callback_method)
        self._attrs = a
        self._x = f"<Record{s}/>"


class Conference(_TextElement):
    """Join the conference room named by the text (case-sensitive, trimmed).

    ``stay_alone`` defaults to false on Vobiz: a lone member is disconnected, so set
    ``stay_alone=True`` on any leg that may arrive first. ``max_participants`` is parsed but
    not effective (the Vobiz builder's ``maxMembers`` is not accepted, spec §6 item 15);
    ``record``, ``action`` and ``wait_method`` are documented as unreliable or unimplemented.
    """

    __slots__ = ()
    tag = "Conference"
    _table = _t.CONFERENCE

    def __init__(
        self,
        room: str,
        /,
        *,
        muted: bool | None = None,
        beep: bool | None = None,
        start_conference_on_enter: bool | None = None,
        end_conference_on_exit: bool | None = None,
        max_participants: int | None = None,
        stay_alone: bool | None = None,
        enter_sound: str | None = None,
        exit_sound: str | None = None,
        relay_dtmf: bool | None = None,
        digits_match: str | None = None,
        hangup_on_star: bool | None = None,
        wait_sound: str | None = None,
        wait_method: str | None = None,
        callback_url: str | None = None,
        callback_method: str | None = None,
        record: bool | None = None,
        record_file_format: str | None = None,
        time_limit: int | None = None,
        action: str | None = None,
        method: str | None = None,
    ) -> None:
        t = _t.CONFERENCE
        self._text, e = TEXTS["Conference"].take(room)
        a: dict[str, str] = {}
        s = ""
        if muted is not None:
            s += t["muted"].put(a, muted)
        if beep is not None:
            s += t["beep"].put(a, beep)
        if start_conference_on_enter is not None:
            s += t["start_conference_on_enter"].put(a, start_conference_on_enter)
        if end_conference_on_exit is not None:
            s += t["end_conference_on_exit"].put(a, end_conference_on_exit)
        if max_participants is not None:
            s += t["max_participants"].put(a, max_participants)
        if stay_alone is not None:
            s += t["stay_alone"].put(a, stay_alone)
        if enter_sound is not None:
            s += t["enter_sound"].put(a, enter_sound)
        if exit_sound is not None:
            s += t["exit_sound"].put(a, exit_sound)
        if relay_dtmf is not None:
            s += t["relay_dtmf"].put(a, relay_dtmf)
        if digits_match is not None:
            s += t["digits_match"].put(a, digits_match)
        if hangup_on_star is not None:
            s += t["hangup_on_star"].put(a, hangup_on_star)
        if wait_sound is not None:
            s += t["wait_sound"].put(a, wait_sound)
        if wait_method is not None:
            s += t["wait_method"].put(a, wait_method)
        if callback_url is not None:
            s += t["callback_url"].put(a, callback_url)
        if callback_method is not None:
            s += t["callback_method"].put(a, callback_method)
        if record is not None:
            s += t["record"].put(a, record)
        if record_file_format is not None:
            s += t["record_file_format"].put(a, record_file_format)
        if time_limit is not None:
            s += t["time_limit"].put(a, time_limit)
        if action is not None:
            s += t["action"].put(a, action)
        if method is not None:
            s += t["method"].put(a, method)
        self._attrs = a
        self._x = f"<Conference{s}>{e}</Conference>"


class Stream(_TextElement):
    """Fork call audio to a ``wss://`` WebSocket (``ws://`` for local tests only).

    Rules: ``bidirectional=True`` needs ``audio_track`` inbound (or left out), and
    ``keep_call_alive=True`` needs ``bidirectional=True``. ``extra_headers`` takes
    ``"k=v,k2=v2"`` or a mapping, ``[A-Za-z0-9]`` only (spec §6 item 16), at most 512 bytes.
    """

    __slots__ = ()
    tag = "Stream"
    _table = _t.STREAM
    _ruled = True

    def __init__(
        self,
        url: str,
        /,
        *,
        bidirectional: bool | None = None,
        audio_track: str | None = None,
        stream_timeout: int | None = None,
        status_callback_url: str | None = None,
        status_callback_method: str | None = None,
        content_type: str | None = None,
        extra_headers: str | Mapping[str, str] | None = None,
        max_retries: int | None = None,
        keep_call_alive: bool | None = None,
    ) -> None:
        t = _t.STREAM
        self._text, e = TEXTS["Stream"].take(url)
        a: dict[str, str] = {}
        s = ""
        if bidirectional is not None:
            s += t["bidirectional"].put(a, bidirectional)
        if audio_track is not None:
            s += t["audio_track"].put(a, audio_track)
        if stream_timeout is not None:
            s += t["stream_timeout"].put(a, stream_timeout)
        if status_callback_url is not None:
            s += t["status_callback_url"].put(a, status_callback_url)
        if status_callback_method is not None:
            s += t["status_callback_method"].put(a, status_callback_method)
        if content_type is not None:
            s += t["content_type"].put(a, content_type)
        if extra_headers is not None:
            s += t["extra_headers"].put(a, extra_headers)
        if max_retries is not None:
            s += t["max_retries"].put(a, max_retries)
        if keep_call_alive is not None:
            s += t["keep_call_alive"].put(a, keep_call_alive)
        self._attrs = a
        self._x = f"<Stream{s}>{e}</Stream>"

    def _rule(self, index: int, last: int) -> str | None:
        a = self._attrs
        bidirectional = a.get("bidirectional") == "true"
        if bidirectional and a.get("audioTrack", "inbound") != "inbound":
            return (
                f"bidirectional=True needs audio_track 'inbound' (or none), got "
                f"{a['audioTrack']!r}; with 'both' the call hangs up at once"
            )
        if a.get("keepCallAlive") == "true" and not bidirectional:
            return "keep_call_alive=True needs bidirectional=True"
        return None
