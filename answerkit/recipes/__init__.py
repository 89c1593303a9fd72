"""Ready call flows built from ordinary routes: IVR menus, warm transfer, forwarding, triggers."""

from __future__ import annotations

from answerkit.recipes.forwarding import Forwarding
from answerkit.recipes.ivr import IVRMenu, Option
from answerkit.recipes.trigger import TransferTrigger, TriggerOutcome
from answerkit.recipes.warm_transfer import WarmTransfer, WarmTransferStart

# The result types too: code that passes them on (a CRM handler returning what move()
# gave) must be able to name them in its annotations.
__all__ = [
    "Forwarding",
    "IVRMenu",
    "Option",
    "TransferTrigger",
    "TriggerOutcome",
    "WarmTransfer",
    "WarmTransferStart",
]
