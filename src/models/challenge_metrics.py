"""ISBI 2012 challenge scores on cell instances, as torchmetrics Metrics (synced across ranks).

Cells are the connected components (4-connectivity) of the non-membrane pixels of the
prediction and of the ground truth; scikit-image scores them. Note the differences from the
challenge's leaderboard: no border thinning and no threshold sweep, and VI is reported as the sum
of the two conditional entropies in bits (not the normalised V_info).
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label
from skimage.metrics import adapted_rand_error, variation_of_information
from torchmetrics import Metric


def cell_instances(membrane: np.ndarray) -> np.ndarray:
    """Label image of the cells (non-membrane components), 0 on membrane."""
    return label(~membrane.astype(bool), connectivity=1)


class InstanceScore(Metric):
    """Mean per-image ``rand_error`` (1 - foreground-restricted adapted Rand F-score) or ``vi``
    (variation of information, split + merge, bits), ground-truth membrane ignored."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, score: str, **kwargs) -> None:
        super().__init__(**kwargs)
        if score not in ("rand_error", "vi"):
            raise ValueError(f"unknown instance score {score!r}")
        self.score = score
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred_membrane: torch.Tensor, true_membrane: torch.Tensor) -> None:
        """(N, H, W) {0, 1} membrane maps."""
        for pred, true in zip(pred_membrane.cpu().numpy(), true_membrane.cpu().numpy()):
            cells_true, cells_pred = cell_instances(true), cell_instances(pred)
            if self.score == "rand_error":
                value = adapted_rand_error(cells_true, cells_pred, ignore_labels=(0,))[0]
            else:
                value = float(sum(variation_of_information(cells_true, cells_pred, ignore_labels=(0,))))
            self.total += float(value)
            self.count += 1

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp_min(1)).float()
