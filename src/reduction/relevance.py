"""Per-pixel relevance of a segmentation model's training images (digest section 1.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from src.saliency.attribution import GRADIENT_METHODS, attribute, coarsest_conv

METHODS = ("prediction",) + GRADIENT_METHODS


@dataclass(frozen=True)
class RelevanceConfig:
    method: str = "prediction"
    background_class: int = 0
    ig_steps: int = 16
    smoothgrad_samples: int = 8
    smoothgrad_stdev: float = 0.1


def foreground_probability(module: nn.Module, images: torch.Tensor, background_class: int) -> torch.Tensor:
    """The notes' relevance: softmax, then the summed probability of every non-background class
    (sigmoid probability for one-channel outputs, i.e. the output itself for eliret's regression)."""
    probs = module.probabilities(module(images))
    if probs.shape[1] == 1:
        return probs[:, 0]
    return 1.0 - probs[:, background_class]


class ForegroundScore(nn.Module):
    """Reduces a segmentation to one scalar per image for captum: the summed logits of the
    predicted class over every pixel predicted as foreground (the target is the model's own
    foreground prediction, fixed before attribution)."""

    def __init__(self, module: nn.Module, target_mask: torch.Tensor) -> None:
        super().__init__()
        self.module = module
        self.target_mask = target_mask  # (N, K, H, W) one-hot of predicted foreground classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.module(images)
        # captum's NoiseTunnel/IG repeat the batch; repeat the target to match
        repeats = logits.shape[0] // self.target_mask.shape[0]
        mask = self.target_mask.repeat(repeats, 1, 1, 1)
        return (logits * mask).sum((1, 2, 3)).unsqueeze(1)


def predicted_foreground(logits: torch.Tensor, background_class: int) -> torch.Tensor:
    if logits.shape[1] == 1:
        return (logits > 0).float()
    classes = logits.argmax(1)
    mask = nn.functional.one_hot(classes, logits.shape[1]).permute(0, 3, 1, 2).float()
    mask[:, background_class] = 0.0
    return mask


def relevance_maps(module: nn.Module, images: torch.Tensor, config: RelevanceConfig) -> torch.Tensor:
    """(N, H, W) float relevance for one batch of (N, C, H, W) images; ``module`` in eval mode."""
    if config.method == "prediction":
        with torch.no_grad():
            return foreground_probability(module, images, config.background_class)
    with torch.no_grad():
        target = predicted_foreground(module(images), config.background_class)
    score = ForegroundScore(module, target)
    layer = coarsest_conv(module, images[:1]) if config.method == "gradcam" else None
    with torch.enable_grad():
        return attribute(
            score,
            images,
            config.method,
            layer=layer,
            ig_steps=config.ig_steps,
            smoothgrad_samples=config.smoothgrad_samples,
            smoothgrad_stdev=config.smoothgrad_stdev,
        ).detach()
