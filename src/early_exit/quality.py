"""How well each exit signal tells that exit's correct predictions from its wrong ones, apart
from what the signal costs: AUROC and the area under the risk-coverage curve (AURC)."""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.classification import binary_auroc

# signals where a lower value means "more likely right" are negated before ranking
LOWER_IS_SURER = ("entropy", "saliency_entropy", "saliency_inertia")


def aurc(score: torch.Tensor, correct: torch.Tensor) -> float:
    """Mean selective risk over every coverage: samples taken in order of decreasing ``score``;
    0 = all errors ranked last (and none made), the error rate = an uninformative ranking."""
    order = torch.argsort(score, descending=True, stable=True)
    errors = (~correct[order]).double().cumsum(0)
    return (errors / torch.arange(1, len(score) + 1, dtype=torch.float64)).mean().item()


def signal_quality(signals: dict[str, torch.Tensor], predictions: torch.Tensor, labels: torch.Tensor) -> list[dict[str, object]]:
    """One row per exit and signal: AUROC of the signal for "this exit's prediction is right",
    AURC, and the exit's accuracy (AUROC is NaN when an exit is always or never right)."""
    rows = []
    for name, values in signals.items():
        for exit_, value in enumerate(values):
            finite = torch.isfinite(value)
            if not finite.all():  # coherence with the previous exit does not exist at exit 0
                continue
            correct = predictions[exit_] == labels
            score = -value if name in LOWER_IS_SURER else value
            both = bool(correct.any()) and bool((~correct).any())
            rows.append(
                {
                    "exit": exit_,
                    "signal": name,
                    "auroc": binary_auroc(score.float(), correct.int()).item() if both else math.nan,
                    "aurc": aurc(score, correct),
                    "accuracy": correct.double().mean().item(),
                }
            )
    return rows
