"""Model-free measures of one reduction round: how close a method's keep-masks are to the
oracle's, and how much of a known cue the reduced images still carry. Neither needs a trained
model, so a benchmark's set and keep fraction can be checked before any training
(``python -m src.pilot``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class KnownCue(Protocol):
    """A data module that knows the spurious cue it put into its training images (the shortcut
    set): the reduction then logs how much of it each round leaves (``cue_share`` in rounds.csv)."""

    def training_cue(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images without their cue and the cue added to each, both (N, C, H, W) in
        image units, in training-set order."""
        ...


def keep_iou(masks: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(N,) intersection over union of each image's keep-mask with the reference's (both (N, H, W)
    bool); 1 where both keep nothing."""
    masks, reference = masks.flatten(1), reference.flatten(1)
    union = (masks | reference).sum(1)
    inter = (masks & reference).sum(1)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union, dtype=torch.float32)).float()


def object_recall(masks: torch.Tensor, targets: torch.Tensor, background_class: int = 0) -> torch.Tensor:
    """(N,) the share of each image's object pixels (``targets`` != ``background_class``) that its
    keep-mask keeps (both (N, H, W)); NaN for an image without an object. A map that keeps the
    object whole scores 1 whatever else it keeps: beside the cue share it tells a map that removed
    the cue from one that cut into the object to do so."""
    objects = (targets != background_class).flatten(1)
    count = objects.sum(1)
    kept = (masks.flatten(1) & objects).sum(1)
    return torch.where(count > 0, kept / count.clamp(min=1), torch.full_like(count, float("nan"), dtype=torch.float32)).float()


def cue_share(reduced: torch.Tensor, cue_free: torch.Tensor, component: torch.Tensor) -> torch.Tensor:
    """(N,) the share of each image's cue left after reduction: the least-squares amplitude of the
    cue ``component`` (what the generator added) in ``reduced - cue_free`` (the reduced image less
    the same image without its cue), so 1 for an untouched image and 0 when the fill rebuilt a
    cue-free background. All (N, H, W) floats in image units; NaN for an image without a cue."""
    difference = (reduced - cue_free).flatten(1).double()
    pattern = component.flatten(1).double()
    energy = (pattern * pattern).sum(1)
    share = (difference * pattern).sum(1) / energy.clamp(min=1e-12)
    return torch.where(energy > 0, share, torch.full_like(share, float("nan"))).float()
