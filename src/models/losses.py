"""Segmentation losses by name, checked against the output mode (task) before training."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from src.config.errors import UserInputError

TASKS = ("regression", "binary", "multiclass")
LOSSES = {
    # regression: one sigmoid channel, targets in [0, 1] (eliret, MSE as in the original study)
    "regression": ("mse", "bce", "dice"),
    "binary": ("bce", "dice", "dice+bce", "mse", "weighted_ce"),
    "multiclass": ("ce", "dice", "dice+ce", "weighted_ce"),
}
DEFAULT_LOSS = {"regression": "mse", "binary": "bce", "multiclass": "ce"}

# (logits, target, per-pixel weight or None) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
# losses that read the batch's per-pixel "weight" map (the U-Net paper's border weights)
WEIGHTED = ("weighted_ce",)


def check_task(task: str, out_channels: int) -> None:
    if task not in TASKS:
        raise UserInputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    if task in ("regression", "binary") and out_channels != 1:
        raise UserInputError(f"task {task!r} needs one output channel, the data gives {out_channels}.")
    if task == "multiclass" and out_channels < 2:
        raise UserInputError(f"task 'multiclass' needs >= 2 output channels, the data gives {out_channels}.")


def build_loss(name: str | None, task: str, ignore_index: int | None = None) -> tuple[str, LossFn]:
    """Resolve ``name`` (None: the task's default) to a loss on (logits, target, weight).

    Targets: (N, 1, H, W) float in [0, 1] for regression/binary, (N, H, W) long for multiclass.
    ``weighted_ce``: cross-entropy (BCE for one channel) times the per-pixel weight map.
    ``ignore_index``: target pixels of that value (unlabelled) count in no loss term.
    """
    name = DEFAULT_LOSS[task] if name is None else name
    if name not in LOSSES[task]:
        raise UserInputError(f"loss {name!r} does not fit task {task!r}; choose one of {', '.join(LOSSES[task])} (model.loss).")
    if ignore_index is not None and name == "weighted_ce":
        raise UserInputError(f"loss {name!r} has no unlabelled pixels to skip; leave data.ignore_index unset (null) and reduction.removed=label.")
    if name == "weighted_ce":
        return name, lambda logits, target, weight: _weighted_ce(logits, target, weight, task)
    if ignore_index is not None:
        return name, _ignoring(name, task, ignore_index)
    loss = _unweighted(name, task)
    return name, lambda logits, target, weight=None: loss(logits, target)


def _weighted_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, task: str) -> torch.Tensor:
    if weight is None:
        raise UserInputError("loss weighted_ce needs per-pixel weights: set data.border_weights=true.")
    if task == "multiclass":
        return (F.cross_entropy(logits, target, reduction="none") * weight.squeeze(1)).mean()
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).mean()


def _ignoring(name: str, task: str, ignore_index: int) -> LossFn:
    """The loss over labelled pixels only: cross-entropy and smp's Dice skip ``ignore_index``
    themselves; the one-channel BCE and MSE are averaged over the labelled pixels."""
    dice = _dice(task, ignore_index) if "dice" in name.split("+") else None

    def one_channel(logits: torch.Tensor, target: torch.Tensor, term: str) -> torch.Tensor:
        labelled = target != ignore_index
        clean = torch.where(labelled, target, torch.zeros_like(target))
        if term == "mse":
            pixels = F.mse_loss(torch.sigmoid(logits), clean, reduction="none")
        else:
            pixels = F.binary_cross_entropy_with_logits(logits, clean, reduction="none")
        return (pixels * labelled).sum() / labelled.sum().clamp(min=1)

    def loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        total = torch.zeros((), device=logits.device)
        for term in name.split("+"):
            if dice is not None and term == "dice":
                total = total + dice(logits, target)
            elif term == "ce":
                total = total + F.cross_entropy(logits, target, ignore_index=ignore_index)
            else:
                total = total + one_channel(logits, target, term)
        return total

    return loss


def _unweighted(name: str, task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "mse":
        return lambda logits, target: F.mse_loss(torch.sigmoid(logits), target)
    if name == "bce":
        return F.binary_cross_entropy_with_logits
    if name == "ce":
        return F.cross_entropy
    dice = _dice(task)
    if name == "dice":
        return dice
    companion = F.cross_entropy if task == "multiclass" else F.binary_cross_entropy_with_logits
    return lambda logits, target: dice(logits, target) + companion(logits, target)


def _dice(task: str, ignore_index: int | None = None) -> torch.nn.Module:
    """smp's Dice loss, imported here: smp's import (timm's model zoo) would slow every start,
    most of which train with another loss."""
    from segmentation_models_pytorch.losses import DiceLoss

    return DiceLoss("multiclass" if task == "multiclass" else "binary", from_logits=True, ignore_index=ignore_index)


def right_reasons_penalty(images: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, margin: int, ignore_index: int | None = None) -> torch.Tensor:
    """Right for the Right Reasons (Ross et al. 2017, "Right for the Right Reasons: Training
    Differentiable Models by Constraining their Explanations") for segmentation: the input
    gradient of the object pixels' own class log-probabilities (the outputs whose reasons the
    labels annotate: each ground-truth object pixel's log-probability of its class, averaged over
    the object pixels), squared at the input pixels farther than ``margin`` px (Euclidean) from
    every object pixel and averaged over those pixels and the channels, then over the images (one
    without an object, or without such pixels, adds 0). Background outputs are left out: their
    reason is their own pixel, so penalising them would penalise segmentation itself. Averages,
    not sums, so the weight has a scale that does not grow with the image or the object.
    ``images`` must require grad and ``logits`` come from them; the result is differentiable
    (create_graph). Objects: target class > 0, or a one-channel target above 0.5; pixels marked
    ``ignore_index`` count as neither object nor background."""
    classes = targets[:, 0] if targets.ndim == 4 else targets
    ignored = classes == ignore_index if ignore_index is not None else torch.zeros_like(classes, dtype=torch.bool)
    objects = ((classes > 0.5) if classes.is_floating_point() else (classes > 0)) & ~ignored
    if logits.shape[1] == 1:  # binary and regression: the foreground's log-probability
        own = F.logsigmoid(logits[:, 0])
    else:
        own = F.log_softmax(logits, 1).gather(1, torch.where(objects, classes.long(), 0).unsqueeze(1))[:, 0]
    counts = objects.flatten(1).sum(1)
    per_image = (own * objects).flatten(1).sum(1) / counts.clamp(min=1)
    (gradient,) = torch.autograd.grad(per_image.sum(), images, create_graph=True)
    near = objects.float().unsqueeze(1)
    if margin > 0:
        offsets = torch.arange(-margin, margin + 1, dtype=torch.float32, device=near.device)
        disk = ((offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2) <= margin**2).float().view(1, 1, 2 * margin + 1, 2 * margin + 1)
        near = F.conv2d(near, disk, padding=margin)
    outside = ((near == 0) & ~ignored.unsqueeze(1)).to(gradient.dtype).expand_as(gradient)
    squared = ((gradient * outside) ** 2).flatten(1).sum(1) / outside.flatten(1).sum(1).clamp(min=1)
    return squared.mean()
