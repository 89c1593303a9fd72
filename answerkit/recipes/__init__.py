"""Ready call flows built from ordinary routes: IVR menus, warm transfer, forwarding, triggers."""

from __future__ import annotations

from answerkit.recipes.forwarding import Forwarding
from answerkit.recipes.ivr import Action, IVRMenu, Option, Target
from answerkit.recipes.trigger import TransferTrigger, TriggerOutcome
from answerkit.recipes.warm_transfer import WarmOutcome, WarmTransfer, WarmTransferStart

# The result types too: code that passes them on (a CRM handler returning what move()
# gave) must be able to name them in its annotations, and a menu's options
# (dict[str, Target | Option]) built apart from the IVRMenu call.
__all__ = [
    "Action",
    "Forwarding",
    "IVRMenu",
    "Option",
    "Target",
    "TransferTrigger",
    "TriggerOutcome",
    "WarmOutcome",
    "WarmTransfer",
    "WarmTransferStart",
]
