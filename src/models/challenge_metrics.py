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
from skimage.metrics import adapted_rand_error, contingency_table, variation_of_information
from torchmetrics import Metric


def cell_instances(membrane: np.ndarray) -> np.ndarray:
    """Label image of the cells (non-membrane components), 0 on membrane."""
    return label(~membrane.astype(bool), connectivity=1)


class InstanceScores(Metric):
    """Mean per-image ``rand_error`` (1 - foreground-restricted adapted Rand F-score) and ``vi``
    (variation of information, split + merge, bits), ground-truth membrane ignored. Both come from
    one labelling of each image and one contingency table (scikit-image's scores accept it), so
    each image is labelled and counted once, not once per score."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, prefix: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix
        for state in ("rand_error", "vi"):
            self.add_state(state, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred_membrane: torch.Tensor, true_membrane: torch.Tensor) -> None:
        """(N, H, W) {0, 1} membrane maps."""
        for pred, true in zip(pred_membrane.cpu().numpy(), true_membrane.cpu().numpy()):
            cells_true, cells_pred = cell_instances(true), cell_instances(pred)
            table = contingency_table(cells_true, cells_pred, ignore_labels=(0,), sparse_type="array")
            self.rand_error += float(adapted_rand_error(table=table)[0])
            # VI reads a table of probabilities
            self.vi += float(sum(variation_of_information(cells_true, cells_pred, table=table / table.sum())))
            self.count += 1

    def compute(self) -> dict[str, torch.Tensor]:
        count = self.count.clamp_min(1)
        return {f"{self.prefix}rand_error": (self.rand_error / count).float(), f"{self.prefix}vi": (self.vi / count).float()}
