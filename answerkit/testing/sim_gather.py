"""The ``<Gather>`` element of a simulated call: its prompts, the caller's answer, its action.

The answer comes from the test's script: the ``digits``/``speech`` given to
:meth:`CallSimulator.call`, then what :meth:`SimulatedCall.press` and
:meth:`SimulatedCall.say` queued, then the simulator's ``input_provider``
(:func:`_take_input` reads them in that order). The caller's answer is taken here, at
the Gather, which is the one element that asks for it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from answerkit.elements import Element
from answerkit.testing.sim_elements import _int, check_schedule, hear
from answerkit.testing.sim_script import DIGIT_KEYS
from answerkit.testing.sim_signals import BLOCK, STEP, Fetch, GatherPrompt

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["gather"]


def gather(call: SimulatedCall, el: Element) -> Generator[int, None, Fetch | None]:
    """Play the prompts, take the next scripted input, and hand off to the action.

    No input (spec §6 item 2): with ``gather_timeout="next"`` (the default) the call
    goes on with the next element; with ``"post-empty"`` the action gets empty
    ``Digits``/``Speech``. The spec names no ``Event`` for the action, so none is sent.
    """
    prompts = []
    endless = False
    for child in el.children:
        endless = hear(call, child) or endless
        prompts.append((child.text or "").strip())
    # A scheduled hang-up that fell due during the prompts ends the call there: the caller
    # is gone before any input is taken (or the test's pause at this Gather is reached).
    check_schedule(call)
    if call.has_pending:
        # A hang-up or transfer asked for while the prompts played (a listener reacting
        # to what was heard) ends the Gather before the caller answers it.
        yield STEP
    if call.stop_at == "gather":
        call.stop_at = None
        call.paused = True
        yield BLOCK
    types = tuple((el.get("inputType") or "dtmf").split())
    finish = el.get("finishOnKey", "#") or ""
    finish = "" if finish == "none" else finish
    num_digits = _int(el.get("numDigits"), 32)
    prompt = GatherPrompt(types, num_digits, finish, tuple(prompts))
    got = _take_input(call, types, prompt)
    action = el.get("action")
    masked = el.get("log") == "false"
    if got is None and endless:
        # The timeout starts once the prompts end (spec §1.2), and a loop=0 one never
        # does: the caller hears it until they answer (call.press/say while blocked), hang
        # up or are transferred, as with any looping audio.
        call._emit(
            "note",
            "the Gather's prompt loops for ever (loop=0), so its executionTimeout never "
            "starts: a silent caller hears it until the call ends",
        )
        while got is None:
            yield BLOCK
            got = _take_input(call, types, prompt)
    if got is None:
        call.clock += _int(el.get("executionTimeout"), 15)
        check_schedule(call)  # hung up while the Gather waited: no action either way
        call._emit("no-input", "gives no input")
        if call.sim.gather_timeout == "next" or not action:
            return None
        params = {"InputType": types[0], "Digits": "", "Speech": "", "SpeechConfidenceScore": ""}
    else:
        kind, value = got
        call.clock += 2
        check_schedule(call)  # hung up before the input was complete: nothing was sent
        if kind == "dtmf":
            if finish and finish in value:
                value = value[: value.index(finish)]
            value = value[:num_digits]
            call.transcript.digits_sent.append(value)
            shown = "*" * len(value) if masked else value
            call._emit("press", f"presses: {shown}", digits=value)
            params = {
                "InputType": "dtmf",
                "Digits": value,
                "Speech": "",
                "SpeechConfidenceScore": "",
            }
        else:
            call.transcript.speech_sent.append(value)
            call._emit("say", f'says: "{"***" if masked else value}"', speech=value)
            interim = el.get("interimSpeechResultsCallback")
            if interim:
                # One partial result before the final one (spec §2.4); the reply is ignored.
                method = el.get("interimSpeechResultsCallbackMethod") or "POST"
                call._notify(
                    interim,
                    method,
                    "",
                    {
                        "StableSpeech": value,
                        "UnstableSpeech": "",
                        "Stability": "0.90",
                        "SequenceNumber": "1",
                    },
                )
            params = {
                "InputType": "speech",
                "Digits": "",
                "Speech": value,
                "SpeechConfidenceScore": f"{call.setup.speech_confidence:.2f}",
            }
    if not action:
        return None
    method = el.get("method") or "POST"
    if el.get("redirect") == "false":
        call._send(action, method, call._params(None, params))
        return None
    return Fetch(action, method, None, params, "action")


def _take_input(
    call: SimulatedCall, types: tuple[str, ...], prompt: GatherPrompt
) -> tuple[str, str] | None:
    """The caller's answer to a Gather taking ``types``, or None for no input.

    The scripted lists first. A Gather reads the next entry of the list of each type
    it accepts; one taking both takes the keys when the next digits entry holds some
    (the first input detected wins, spec §1.2 Gather), else the speech, and a no-input
    entry (None) in one list pairs with the other list's entry at that Gather: with
    ``digits=[None, "1", None]`` and ``speech=["english", None, "cancel"]`` three such
    Gathers get "english", 1 and "cancel", while ``digits="9", speech="sales"`` still
    gives 9 to the first and "sales" to the next Gather that hears speech.

    Then press()/say(): the first answer queued of a type the Gather takes (the others
    wait for a later Gather); with none, the simulator's ``input_provider``.
    """
    dtmf, spoken = "dtmf" in types and call._digits, "speech" in types and call._speech
    if dtmf or spoken:
        d = call._digits[0] if dtmf else None
        s = call._speech[0] if spoken else None
        if d is not None:
            call._digits.popleft()
            if spoken and s is None:
                call._speech.popleft()  # this Gather's no-speech placeholder
            return ("dtmf", d)
        if dtmf:
            call._digits.popleft()  # None: no keys at this Gather
        if spoken:
            call._speech.popleft()
        return None if s is None else ("speech", s)
    for i, (kind, value) in enumerate(call._inputs):
        if kind in types:  # the first answer this Gather takes; the others wait
            del call._inputs[i]
            return None if value is None else (kind, value)
    provider = call.sim.input_provider
    if provider is not None:
        answer = provider(call, prompt)
        if answer:
            if "dtmf" in types and set(answer) <= DIGIT_KEYS:
                return ("dtmf", answer)
            if "speech" in types:
                return ("speech", answer)
    return None
