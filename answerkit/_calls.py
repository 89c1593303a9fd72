"""Elements that connect or capture the call: Dial (with Number and User), Conference, Record
and Stream (spec §1.2). Re-exported by :mod:`answerkit.elements`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn, TypeVar

from answerkit import _tables as _t
from answerkit._element import (
    RULE_CHECK,
    RULE_NONE,
    Element,
    _Container,
    _TextElement,
)
from answerkit._tables import TEXTS, TagMemo
from answerkit._tables import not_vobiz as not_vobiz_error
from answerkit._xmltext import esc_text, xml_blank
from answerkit.errors import ElementError

_DialChildT = TypeVar("_DialChildT", bound="Number | User")  # what Dial.add takes

# Each attribute's bound checker by Python name (see Table.frag); the text checkers likewise.
_DIAL_FULL = TagMemo(_t.DIAL, *_t.DIAL)
_DIAL_SHORT = TagMemo(
    _t.DIAL,
    "action", "method", "callback_url", "callback_method", "caller_id", "caller_name",
    "timeout", "time_limit",
)  # fmt: skip
_NUMBER = _t.NUMBER.frag
_USER = _t.USER.frag
_RECORD = _t.RECORD.frag
_CONFERENCE = _t.CONFERENCE.frag
_STREAM = _t.STREAM.frag
_NUMBER_TEXT = TEXTS["Number"]
_number_whole = _NUMBER_TEXT.bare.get
_USER_TEXT = TEXTS["User"]
_conference_text = TEXTS["Conference"].take
_stream_text = TEXTS["Stream"].take


class Dial(_Container["Number | User"]):
    """Call one or more Number/User B-legs at once and bridge the first to answer.

    Give ``caller_id`` (an E.164 number of the account): without it inbound-call transfers
    fail. The shorthand ``Dial("+14156667890")`` (one number as text) is accepted; explicit
    ``Number`` children are preferred. Record is not accepted as a child (spec §6 item 7).
    ``sip_headers`` takes ``"k=v,k2=v2"`` or a mapping; keys are written as given (spec §6
    item 4): ``Reason`` and ``ReasonX-VH`` both pass, values are ``[A-Za-z0-9]``.
    """

    __slots__ = ("_r", "_text")
    tag = "Dial"
    _table = _t.DIAL
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
        **not_vobiz: NoReturn,
    ) -> None:
        if not_vobiz:  # a Plivo or TwiML name, say: the error names the VobizXML one
            raise not_vobiz_error(self.tag, self._table, not_vobiz)
        # As in Gather: the start tag memoised by the values given, a shorter key for the
        # usual Dial (none of the rarer attributes), a hit only for values of the types kept.
        if (
            redirect is None
            and hangup_on_star is None
            and dial_music is None
            and confirm_sound is None
            and confirm_key is None
            and confirm_timeout is None
            and digits_match is None
            and digits_match_b_leg is None
            and sip_headers is None
        ):
            key = (action, method, callback_url, callback_method, caller_id, caller_name,
                   timeout, time_limit)  # fmt: skip
            try:
                s = _DIAL_SHORT.memo.get(key)
            except TypeError:  # an unhashable value: tag() refuses it
                s = None
            if s is None or not (
                (action is None or type(action) is str)
                and (method is None or type(method) is str)
                and (callback_url is None or type(callback_url) is str)
                and (callback_method is None or type(callback_method) is str)
                and (caller_id is None or type(caller_id) is str)
                and (caller_name is None or type(caller_name) is str)
                and (timeout is None or type(timeout) is int)
                and (time_limit is None or type(time_limit) is int)
            ):
                s = _DIAL_SHORT.tag(key)
        else:
            s = _DIAL_FULL.get(
                (action, method, callback_url, callback_method, redirect, caller_id,
                 caller_name, timeout, time_limit, hangup_on_star, dial_music, confirm_sound,
                 confirm_key, confirm_timeout, digits_match, digits_match_b_leg, sip_headers)
            )  # fmt: skip
        self._open = s
        self._text = None
        if not children:
            self._children = []
            self._x = s + "/>"
            self._r = RULE_CHECK  # nothing to dial, unless add() brings a Number
            return
        self._r = RULE_NONE
        # Checked and rendered in one pass: Number and User never change (add() drops _x).
        body = ""
        for k in children:
            t = type(k)
            if t is not Number and t is not User:
                if isinstance(children[0], str):
                    self._shorthand(children[0], len(children))
                else:
                    self._take(children)  # subclasses pass there; anything else raises
                self._x = None
                self._render()
                return
            body += k._x  # type: ignore[operator, union-attr]
        self._children = [*children]  # type: ignore[list-item]
        self._x = f"{s}>{body}</Dial>"

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

    def add(self, child: _DialChildT) -> _DialChildT:
        """Append ``child`` (a Number or User) and return it."""
        if self._text is not None:
            raise ElementError(
                f"Dial: already dials {self._text!r} given as text; use Number children instead",
                element="Dial",
                value=child,
            )
        self._append(child)
        self._r = RULE_NONE
        return child

    def _key(self) -> tuple[object, ...]:
        return (self._a(), self._text, self._children)

    def _args(self) -> list[str]:
        return [repr(self._text)] if self._text is not None else super()._args()

    def _render(self) -> str:
        if self._text is None:
            return super()._render()
        x = self._x = f"{self._open}>{esc_text(self._text)}</Dial>"
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
    def _parsed(
        cls, attrs: dict[str, str], start: str, text: str | None, kids: Sequence[object]
    ) -> Element:
        el = cls._blank(attrs)
        el._open = start
        el._x = None
        el._text = None
        if text and not xml_blank(text):
            el._shorthand(text, 1 + len(kids))
        else:
            el._take(kids)
        el._r = RULE_NONE if el._text is not None or el._children else RULE_CHECK
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
        **not_vobiz: NoReturn,
    ) -> None:
        if not_vobiz:  # sip_headers=, say: the error says where it goes
            raise not_vobiz_error(self.tag, self._table, not_vobiz)
        if send_digits is None and send_on_preanswer is None:
            # The memo lookup inline (Dial(Number(...)) is the transfer document); only a
            # plain str is looked up, as in TextSpec.whole.
            hit = _number_whole(number) if type(number) is str else None
            self._text, self._x = hit or _NUMBER_TEXT.whole(number)
            return
        self._text, e = _NUMBER_TEXT.take(number)
        s = ""
        if send_digits is not None:
            s += _NUMBER["send_digits"](send_digits)
        if send_on_preanswer is not None:
            s += _NUMBER["send_on_preanswer"](send_on_preanswer)
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
        if send_digits is None and send_on_preanswer is None and sip_headers is None:
            self._text, self._x = _USER_TEXT.whole(uri)
            return
        self._text, e = _USER_TEXT.take(uri)
        s = ""
        if send_digits is not None:
            s += _USER["send_digits"](send_digits)
        if send_on_preanswer is not None:
            s += _USER["send_on_preanswer"](send_on_preanswer)
        if sip_headers is not None:
            s += _USER["sip_headers"](sip_headers)
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
        **not_vobiz: NoReturn,
    ) -> None:
        if not_vobiz:  # a Plivo or TwiML name, say: the error names the VobizXML one
            raise not_vobiz_error(self.tag, self._table, not_vobiz)
        t = _RECORD
        s = ""
        if action is not None:
            s += t["action"](action)
        if method is not None:
            s += t["method"](method)
        if file_format is not None:
            s += t["file_format"](file_format)
        if redirect is not None:
            s += t["redirect"](redirect)
        if timeout is not None:
            s += t["timeout"](timeout)
        if max_length is not None:
            s += t["max_length"](max_length)
        if play_beep is not None:
            s += t["play_beep"](play_beep)
        if finish_on_key is not None:
            s += t["finish_on_key"](finish_on_key)
        if record_session is not None:
            s += t["record_session"](record_session)
        if start_on_dial_answer is not None:
            s += t["start_on_dial_answer"](start_on_dial_answer)
        if transcription_type is not None:
            s += t["transcription_type"](transcription_type)
        if transcription_url is not None:
            s += t["transcription_url"](transcription_url)
        if transcription_method is not None:
            s += t["transcription_method"](transcription_method)
        if callback_url is not None:
            s += t["callback_url"](callback_url)
        if callback_method is not None:
            s += t["callback_method"](callback_method)
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
        **not_vobiz: NoReturn,
    ) -> None:
        if not_vobiz:  # a Plivo or TwiML name, say: the error names the VobizXML one
            raise not_vobiz_error(self.tag, self._table, not_vobiz)
        t = _CONFERENCE
        self._text, e = _conference_text(room)
        s = ""
        if muted is not None:
            s += t["muted"](muted)
        if beep is not None:
            s += t["beep"](beep)
        if start_conference_on_enter is not None:
            s += t["start_conference_on_enter"](start_conference_on_enter)
        if end_conference_on_exit is not None:
            s += t["end_conference_on_exit"](end_conference_on_exit)
        if max_participants is not None:
            s += t["max_participants"](max_participants)
        if stay_alone is not None:
            s += t["stay_alone"](stay_alone)
        if enter_sound is not None:
            s += t["enter_sound"](enter_sound)
        if exit_sound is not None:
            s += t["exit_sound"](exit_sound)
        if relay_dtmf is not None:
            s += t["relay_dtmf"](relay_dtmf)
        if digits_match is not None:
            s += t["digits_match"](digits_match)
        if hangup_on_star is not None:
            s += t["hangup_on_star"](hangup_on_star)
        if wait_sound is not None:
            s += t["wait_sound"](wait_sound)
        if wait_method is not None:
            s += t["wait_method"](wait_method)
        if callback_url is not None:
            s += t["callback_url"](callback_url)
        if callback_method is not None:
            s += t["callback_method"](callback_method)
        if record is not None:
            s += t["record"](record)
        if record_file_format is not None:
            s += t["record_file_format"](record_file_format)
        if time_limit is not None:
            s += t["time_limit"](time_limit)
        if action is not None:
            s += t["action"](action)
        if method is not None:
            s += t["method"](method)
        self._x = f"<Conference{s}>{e}</Conference>"


class Stream(_TextElement):
    """Fork call audio to a ``wss://`` WebSocket (``ws://`` for local tests only).

    Rules: ``bidirectional=True`` needs ``audio_track`` inbound (or left out), and
    ``keep_call_alive=True`` needs ``bidirectional=True``. ``extra_headers`` takes
    ``"k=v,k2=v2"`` or a mapping, ``[A-Za-z0-9]`` only (spec §6 item 16), at most 512 bytes.
    """

    __slots__ = ("_r",)
    tag = "Stream"
    _table = _t.STREAM

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
        **not_vobiz: NoReturn,
    ) -> None:
        if not_vobiz:  # a Plivo or TwiML name, say: the error names the VobizXML one
            raise not_vobiz_error(self.tag, self._table, not_vobiz)
        t = _STREAM
        self._text, e = _stream_text(url)
        s = ""
        if bidirectional is not None:
            s += t["bidirectional"](bidirectional)
        if audio_track is not None:
            s += t["audio_track"](audio_track)
        if stream_timeout is not None:
            s += t["stream_timeout"](stream_timeout)
        if status_callback_url is not None:
            s += t["status_callback_url"](status_callback_url)
        if status_callback_method is not None:
            s += t["status_callback_method"](status_callback_method)
        if content_type is not None:
            s += t["content_type"](content_type)
        if extra_headers is not None:
            s += t["extra_headers"](extra_headers)
        if max_retries is not None:
            s += t["max_retries"](max_retries)
        if keep_call_alive is not None:
            s += t["keep_call_alive"](keep_call_alive)
        self._x = f"<Stream{s}>{e}</Stream>"
        if bidirectional is None and keep_call_alive is None:
            self._r = RULE_NONE  # the rules need one of them
        else:
            self._ruled_from_attrs()

    def _ruled_from_attrs(self) -> None:
        self._r = RULE_CHECK if self._rule(0, 0) is not None else RULE_NONE

    def _rule(self, index: int, last: int) -> str | None:
        a = self._a()
        bidirectional = a.get("bidirectional") == "true"
        if bidirectional and a.get("audioTrack", "inbound") != "inbound":
            return (
                f"bidirectional=True needs audio_track 'inbound' (or none), got "
                f"{a['audioTrack']!r}; with 'both' the call hangs up at once"
            )
        if a.get("keepCallAlive") == "true" and not bidirectional:
            return "keep_call_alive=True needs bidirectional=True"
        return None
