"""Ready call flows built from ordinary routes: IVR menus, warm transfer, forwarding, triggers."""

from __future__ import annotations

from answerkit.recipes.forwarding import Forwarding
from answerkit.recipes.ivr import IVRMenu, Option
from answerkit.recipes.trigger import TransferTrigger
from answerkit.recipes.warm_transfer import WarmTransfer

__all__ = ["Forwarding", "IVRMenu", "Option", "TransferTrigger", "WarmTransfer"]
