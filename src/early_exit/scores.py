"""Per-exit predictions, saliency maps and the signals the exit policies threshold."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from src.early_exit.cam import class_activation_map
from src.models.early_exit import EarlyExitClassifier
from src.saliency.attribution import attribute
from src.saliency.measures import moment_of_inertia, spatial_entropy

# cam: free with the pooled-linear heads (src/early_exit/cam.py); the others are captum
# references that cost a backward pass (or several) per map
SALIENCY_METHODS = ("cam", "gradcam", "gradient", "integrated_gradients")


class ExitLogit(nn.Module):
    """Runs the net up to exit ``k`` and returns the logit of a fixed class per sample (N, 1),
    the scalar captum attributes."""

    def __init__(self, module: EarlyExitClassifier, k: int, target: torch.Tensor) -> None:
        super().__init__()
        self.module, self.k, self.target = module, k, target

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.module.net_input(images)
        net = self.module.net
        for stage in net.stages[: net.exit_stages[self.k] + 1]:
            x = stage(x)
        logits = net.heads[self.k](x)
        target = self.target.repeat(len(logits) // len(self.target))
        return logits.gather(1, target[:, None])


def exit_saliency(
    module: EarlyExitClassifier, images: torch.Tensor, k: int, target: torch.Tensor, method: str, head_features: torch.Tensor | None = None
) -> torch.Tensor:
    """(N, H, W) saliency of exit ``k`` for ``target`` classes: the class activation map from the
    exit head's features (``head_features``, computed here when not given), Grad-CAM at the
    exit's last conv layer, or input gradients / integrated gradients; all at the input size."""
    if method == "cam":
        if head_features is None:
            head_features = exit_head_features(module, images, k)
        return class_activation_map(module.net.heads[k], head_features, target, tuple(images.shape[-2:]))
    score = ExitLogit(module, k, target)
    layer = module.net.exit_layer(k) if method == "gradcam" else None
    with torch.enable_grad():
        return attribute(score, images, method, layer=layer, ig_steps=16).detach()


def exit_head_features(module: EarlyExitClassifier, images: torch.Tensor, k: int) -> torch.Tensor:
    """The features exit ``k``'s head pools (its conv's output, or the stage's)."""
    net = module.net
    x = module.net_input(images)
    for stage in net.stages[: net.exit_stages[k] + 1]:
        x = stage(x)
    return net.heads[k].conv(x)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine similarity of two batches of maps."""
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1, eps=1e-12)


def unit_range(maps: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-12)).view_as(maps)


@dataclass
class ExitRecord:
    """Everything about every exit for a set of samples (K exits, N samples)."""

    logits: torch.Tensor  # (K, N, C)
    maps: torch.Tensor  # (K, N, H, W) saliency of each exit for its own predicted class
    labels: torch.Tensor  # (N,)
    temperatures: torch.Tensor | None = None  # (K,) fitted on validation; None = not calibrated

    @property
    def predictions(self) -> torch.Tensor:
        return self.logits.argmax(-1)

    def signals(self) -> dict[str, torch.Tensor]:
        """(K, N) per-exit signals: softmax confidence, temperature-calibrated confidence (when
        fitted), prediction entropy, saliency entropy and inertia, cosine coherence with the
        previous exit's map (NaN at exit 0) and, as an oracle that needs the full network, with
        the final exit's map."""
        probs = self.logits.softmax(-1)
        k = len(self.logits)
        flat_maps = self.maps.flatten(0, 1)
        previous = torch.full_like(probs[..., 0], float("nan"))
        for e in range(1, k):
            previous[e] = cosine(self.maps[e], self.maps[e - 1])
        calibrated = {}
        if self.temperatures is not None:
            calibrated["calibrated_confidence"] = (self.logits / self.temperatures.view(-1, 1, 1)).softmax(-1).max(-1).values
        return {
            "confidence": probs.max(-1).values,
            **calibrated,
            "entropy": -(probs * probs.clamp_min(1e-12).log()).sum(-1),
            "saliency_entropy": spatial_entropy(flat_maps).view(k, -1),
            "saliency_inertia": moment_of_inertia(flat_maps).view(k, -1),
            "coherence_prev": previous,
            "coherence_final_oracle": torch.stack([cosine(self.maps[e], self.maps[-1]) for e in range(k)]),
        }


@torch.no_grad()
def record_exits(module: EarlyExitClassifier, loader, method: str) -> ExitRecord:
    """Run the full network on every batch, with every exit's saliency map."""
    module.eval()
    net = module.net
    logits, maps, labels = [], [], []
    for batch in loader:
        images = batch["image"].to(module.device)
        x, exits, exit_maps = module.net_input(images), [], []
        for i, stage in enumerate(net.stages):
            x = stage(x)
            if i in net.exit_stages:
                k = net.exit_stages.index(i)
                features = net.heads[k].conv(x)
                out = net.heads[k].classify(features)
                exits.append(out.cpu())
                exit_maps.append(exit_saliency(module, images, k, out.argmax(1), method, head_features=features).cpu())
        logits.append(torch.stack(exits))
        maps.append(torch.stack(exit_maps))
        labels.append(batch["label"])
    return ExitRecord(torch.cat(logits, 1), torch.cat(maps, 1), torch.cat(labels))
