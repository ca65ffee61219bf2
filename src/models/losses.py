"""Segmentation losses by name, checked against the output mode (task) before training."""

from __future__ import annotations

from collections.abc import Callable

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from src.errors import UserInputError

TASKS = ("regression", "binary", "multiclass")
LOSSES = {
    # regression: one sigmoid channel, targets in [0, 1] (eliret, MSE as in the notes)
    "regression": ("mse", "bce", "dice"),
    "binary": ("bce", "dice", "dice+bce", "mse"),
    "multiclass": ("ce", "dice", "dice+ce"),
}
DEFAULT_LOSS = {"regression": "mse", "binary": "bce", "multiclass": "ce"}

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_task(task: str, out_channels: int) -> None:
    if task not in TASKS:
        raise UserInputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    if task in ("regression", "binary") and out_channels != 1:
        raise UserInputError(f"task {task!r} needs one output channel, the data gives {out_channels}.")
    if task == "multiclass" and out_channels < 2:
        raise UserInputError(f"task 'multiclass' needs >= 2 output channels, the data gives {out_channels}.")


def build_loss(name: str | None, task: str) -> tuple[str, LossFn]:
    """Resolve ``name`` (None: the task's default) to a loss on (logits, target).

    Targets: (N, 1, H, W) float in [0, 1] for regression/binary, (N, H, W) long for multiclass.
    """
    name = DEFAULT_LOSS[task] if name is None else name
    if name not in LOSSES[task]:
        raise UserInputError(
            f"loss {name!r} does not fit task {task!r}; choose one of {', '.join(LOSSES[task])} (model.loss)."
        )
    if name == "mse":
        return name, lambda logits, target: F.mse_loss(torch.sigmoid(logits), target)
    if name == "bce":
        return name, F.binary_cross_entropy_with_logits
    if name == "ce":
        return name, F.cross_entropy
    dice = smp.losses.DiceLoss("multiclass" if task == "multiclass" else "binary", from_logits=True)
    if name == "dice":
        return name, dice
    companion = F.cross_entropy if task == "multiclass" else F.binary_cross_entropy_with_logits
    return name, lambda logits, target: dice(logits, target) + companion(logits, target)
