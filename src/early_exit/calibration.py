"""Per-exit temperature scaling (Guo et al., 2017), fitted on validation logits, and the expected
calibration error it is judged by (torchmetrics)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) on (N, C) ``logits``: one scalar, so
    the predictions (argmax) do not change, only how confident they claim to be."""
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    logits, labels = logits.detach().double(), labels.detach()
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(nll)
    return float(log_t.detach().exp())


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, bins: int = 15) -> float:
    """ECE (L1, ``bins`` equal-width confidence bins) of softmax(logits / temperature)."""
    probs = (logits.double() / temperature).softmax(-1).float()
    return float(multiclass_calibration_error(probs, labels, num_classes=logits.shape[-1], n_bins=bins, norm="l1"))
