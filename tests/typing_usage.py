"""How user code type-checks against answerkit: `.ci/run` runs `mypy --strict` on this file.

Not a test module (pytest does not collect it): each line is a way users write answerkit
code. The plain lines must type-check; the misuse lines carry a `type: ignore` for the
error the checker must report, and `--strict` fails on an ignore that is not needed, so a
change that stops catching the misuse fails CI too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from answerkit import (
    CallFlow,
    CallRequest,
    Dial,
    ErrorHook,
    Gather,
    Handler,
    Hangup,
    Number,
    Play,
    Response,
    ResponseChild,
    Speak,
    TransferResult,
    User,
    VobizClient,
)
from answerkit.recipes import Forwarding, IVRMenu, Option, Target, WarmOutcome, WarmTransfer
from answerkit.state import RedisStore, SQLiteStore
from answerkit.testing import (
    CallSimulatorFactory,
    DialOutcome,
    LocalVobiz,
    SignedPost,
    SignRequest,
    SimulatedCall,
    Transcript,
    TranscriptEvent,
)

flow = CallFlow("typing", public_url="https://voice.example.com", auth_token="t" * 20)


@flow.route("/sales")
def sales(call: CallRequest) -> Response:
    return Response(Speak("Sales."), Hangup())


@flow.route("/hold-music", sound=True, replay_check=False)
def hold_music(call: CallRequest) -> Response:
    return Response(Play("https://cdn.example.com/hold.mp3", loop=0))


CallFlow("typing3", public_url="https://voice.example.com", auth_token="t" * 20,
         sound_fallback=Response(Play("https://cdn.example.com/hold.mp3")))  # fmt: skip


flow.add_health_endpoint("/healthz")


def on_any_hangup(call: CallRequest) -> None:
    """A listener told of every Hangup webhook of the flow."""


flow.add_hangup_listener(on_any_hangup)
flow.add_hangup_listener(lambda call: None)
CallRequest.from_params({"CallUUID": ["u"], "Digits": ("1", "2")})  # a dict of lists


# A decorated handler keeps its own return type: a test calls it and renders the result.
sales_xml: str = sales(CallRequest.from_params({"CallUUID": "u"})).to_xml()


def closing() -> list[ResponseChild]:
    """A helper returning part of a document."""
    return [Speak("Goodbye."), Hangup()]


whole = Response(Speak("Hello."), *closing())
menu_gather: Gather = whole.add(Gather(action="https://voice.example.com/menu"))
menu_prompt: Speak = menu_gather.add(Speak("Press 1."))
agent: Number = whole.add(Dial()).add(Number("+14155550100"))

# A container's children rebuild another container (README: a menu's prompt document
# after a greeting of one's own); each is typed to the children its container takes.
menu_doc = IVRMenu(flow, "typed_menu", prompt="Press 1.", options={"1": sales})
greeted = Response(Speak("Hello again."), *menu_doc.prompt_document().children)
regathered = Gather(*menu_gather.children, action="https://voice.example.com/menu")
redialed = Dial(*Dial(Number("+14155550100")).children)
numbers_only: list[Number | User] = redialed.children

# A route handler reused as a recipe target; a menu's options built apart from the menu.
options: dict[str, Target | Option] = {"1": Option("sales", phrases=("sales",)), "2": sales}
IVRMenu(flow, "main", prompt="Press 1 or 2.", options=options, fallback=sales)


def maybe(call: CallRequest) -> Response | None:
    """A handler typed as the library's own Handler alias (None: the empty document)."""
    return None if call.digits else Response(Hangup())


# Recipes take such handlers as targets and fallbacks (they were typed Response only).
IVRMenu(flow, "other", prompt="Press 1.", options={"1": maybe}, fallback=maybe)
Forwarding(flow, "fwd", numbers=["+14155550100"], caller_id="+14155550101", fallback=maybe)


def report(exc: BaseException, call: CallRequest | None, route_name: str) -> None:
    pass


hook: ErrorHook = report
handler: Handler = sales
CallFlow("typing2", public_url="https://voice.example.com", auth_token="t" * 20, on_error=hook)

warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155551234", fallback="sales")
record: Mapping[str, object] = {"account": 42, "vip": True}


def start_transfer(caller_uuid: str) -> None:
    warm.start(caller_uuid, context=record)  # any values: they are kept as text


def crm_update(caller_uuid: str, outcome: str) -> None:  # takes any str: fine as a hook
    pass


WarmTransfer(
    flow, "warm2", agent="+14155550142", caller_id="+14155551234", fallback="sales",
    on_outcome=crm_update,
)  # fmt: skip
done: WarmOutcome | None = warm.outcome("caller")


stores = (SQLiteStore, RedisStore)


def test_support_path(call_simulator: CallSimulatorFactory) -> None:  # a typed test
    t = call_simulator(flow).call("sales").run()
    assert t.said("Sales.")
    call_simulator(flow, public_ulr="https://x.example.com")  # type: ignore[call-arg]


def test_by_hand(sign_request: SignRequest, signed_post: SignedPost) -> None:
    """The hand-made webhook fixtures, annotated with their own types."""
    headers: dict[str, str] = sign_request(flow, "/sales")
    reply = signed_post(flow.create_app().test_client(), flow, "/sales", {"CallUUID": "u"})
    assert headers and reply.status_code == 200
    signed_post(flow, "/sales")  # type: ignore[call-arg, arg-type]
    reply.status_codee  # type: ignore[attr-defined]  # noqa: B018


def listener(call: SimulatedCall, event: TranscriptEvent) -> None:
    """A simulator listener: a kind or a phase that never comes is reported."""
    if event.kind == "hear" and call.state == "running":
        pass
    if event.kind == "heard":  # type: ignore[comparison-overlap]
        pass
    if call.state == "runing":  # type: ignore[comparison-overlap]
        pass


def first_dial(t: Transcript) -> DialOutcome | None:
    """A transcript's dial records are typed: a misspelt outcome is reported."""
    if t.dials and t.dials[0]["outcome"] == "answerd":  # type: ignore[comparison-overlap]
        pass
    return t.dials[0]["outcome"] if t.dials else None


def local_transfers(vobiz: LocalVobiz) -> None:
    vobiz.client(timeout=3, max_retries=0)
    vobiz.client(timout=3)  # type: ignore[call-arg]
    for outcome in vobiz.wait_for_transfer("u"):
        outcome.document.to_xml()  # type: ignore[union-attr]  # None when it was dropped
        if outcome.status == "dropped" or outcome.status == "droped":  # type: ignore[comparison-overlap]
            pass


# -- misuse the checker must catch ----------------------------------------------------------

from answerkit.state import SqliteStore  # type: ignore[attr-defined]  # noqa: E402, F401

Speak("Hi.", voice=3)  # type: ignore[arg-type]
flow.url_for()  # type: ignore[call-arg]
Gather(action="https://voice.example.com/menu", timeout=5)  # type: ignore[arg-type]
IVRMenu(flow, "m", prompt="Press 1.", options=options, timeout=5)  # type: ignore[call-arg]
flow.transfer("uuid", aleg_url="https://voice.example.com/hold")  # type: ignore[call-arg]
if warm.outcome("caller") == "acepted":  # type: ignore[comparison-overlap]
    pass
flow.route("/music", sound="yes")  # type: ignore[arg-type]
# add() takes what each container's constructor takes; a leaf has no add() at all.
Response().add(Number("+14155550100"))  # type: ignore[type-var]
Gather(action="https://voice.example.com/menu").add(Hangup())  # type: ignore[type-var]
Dial().add(Speak("Hi."))  # type: ignore[type-var]
Hangup().add(Speak("Hi."))  # type: ignore[attr-defined]
Gather(*whole.children, action="https://voice.example.com/menu")  # type: ignore[arg-type]


class SupportFlow(CallFlow):
    """A subclass overriding a method with its own signature type-checks (an override of
    transfer with the same parameters)."""

    def transfer(
        self,
        call_uuid: str,
        aleg: str | None = None,
        bleg: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        method: str = "POST",
        client: VobizClient | None = None,
    ) -> TransferResult:
        return super().transfer(call_uuid, aleg, bleg, params, method=method, client=client)


class TenantRequest(CallRequest):
    """A request class of the user's own: from_params and with_state give one back."""


tenant: TenantRequest = TenantRequest.from_params({"CallUUID": "u"})
again: TenantRequest = tenant.with_state(tenant.state)


class AuditedClient(VobizClient):
    """A client subclass: its context manager gives the subclass."""


def audited() -> None:
    with AuditedClient("MA_1", "token") as audited_client:
        kept: AuditedClient = audited_client
        del kept
