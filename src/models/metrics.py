"""The metric set logged for every split, from torchmetrics (synced across DDP processes)."""

from __future__ import annotations

import math

import torch
from torchmetrics import MeanMetric, MeanSquaredError, Metric

from src.models.challenge_metrics import InstanceScores


class ClassCounts(Metric):
    """Accuracy, IoU and Dice from one state: the dataset's confusion matrix (and, for
    ``miou_image``, each image's IoU per class), filled by one ``bincount`` per batch instead of
    an update of four torchmetrics metrics, each formatting the batch its own way.

    Class-index maps (N, H, W) in; binary tasks count as 2 classes (background too). The values
    are those of the torchmetrics metrics named below, on the same inputs (a test checks it):

    - ``acc``: pixel accuracy (``MulticlassAccuracy``, micro);
    - ``miou``: dataset-level IoU (intersections and unions summed over all images), averaged
      over the classes present in predictions or targets (``MulticlassJaccardIndex``, macro);
    - ``miou_image``: each image's IoU per class, averaged over the (image, class) pairs whose
      union is not empty (``MeanIoU``);
    - ``mdice``: dataset-level Dice averaged over the classes present (``DiceScore``, macro,
      global aggregation);
    - ``miou_object``: ``miou`` over the object classes alone (every class but 0, the
      background): for a binary task the foreground's IoU; for several object classes a
      confusion between them counts, which the background's large IoU would hide in ``miou``.

    ``per_image=False`` leaves out ``miou_image`` and ``mdice`` (the training split, updated every
    step, logs ``acc`` and ``miou`` only). Target pixels equal to ``ignore_index`` count in no
    metric. The inputs are our own argmax/threshold maps, so they are not checked.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int, per_image: bool = True, ignore_index: int | None = None, prefix: str = "") -> None:
        super().__init__()
        self.num_classes, self.per_image, self.ignore_index, self.prefix = num_classes, per_image, ignore_index, prefix
        self.add_state("confusion", default=torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")
        if per_image:
            self.add_state("image_iou_sum", default=torch.zeros(()), dist_reduce_fx="sum")
            self.add_state("image_iou_count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        c = self.num_classes
        counts = _pair_counts(target.long() * c + predicted.long(), target == self.ignore_index if self.ignore_index is not None else None, c * c)
        counts = counts.view(-1, c, c)  # (image, true class, predicted class)
        self.confusion += counts.sum(0)
        if self.per_image:
            intersection = counts.diagonal(dim1=1, dim2=2)
            union = counts.sum(1) + counts.sum(2) - intersection
            present = union > 0
            self.image_iou_sum += (intersection[present] / union[present]).sum()
            self.image_iou_count += present.sum()

    def compute(self) -> dict[str, torch.Tensor]:
        """Every metric over the batches since the last reset, synced across DDP processes."""
        confusion = self.confusion.float()
        intersection = confusion.diagonal()
        predicted, true = confusion.sum(0), confusion.sum(1)
        present = predicted + true > 0
        union = predicted + true - intersection
        values = {
            "acc": _safe_ratio(intersection.sum(), confusion.sum(), 0.0),
            # summed as MulticlassJaccardIndex sums, so the values agree to the last bit
            "miou": ((present * torch.nan_to_num(intersection / union)) / present.sum()).sum(),
            "miou_object": (intersection[1:][present[1:]] / union[1:][present[1:]]).mean() if present[1:].any() else confusion.new_tensor(math.nan),
        }
        if self.per_image:
            values["miou_image"] = self.image_iou_sum / self.image_iou_count
            values["mdice"] = (2 * intersection[present] / (predicted + true)[present]).mean()
        return {f"{self.prefix}{name}": value for name, value in values.items()}


def _pair_counts(pairs: torch.Tensor, unlabelled: torch.Tensor | None, size: int) -> torch.Tensor:
    """(N, size) count of each value of ``pairs`` (N, ...) per image, skipping ``unlabelled``
    pixels: one ``bincount`` over (image, value) bins, or, where deterministic algorithms are
    on (CUDA's bincount is not deterministic), one comparison per value."""
    n = len(pairs)
    pairs = pairs.reshape(n, -1)
    if unlabelled is not None:
        pairs = torch.where(unlabelled.reshape(n, -1), size, pairs)  # a bin of its own, dropped
    if torch.are_deterministic_algorithms_enabled():
        return torch.stack([(pairs == value).sum(1) for value in range(size)], 1)
    offsets = torch.arange(n, device=pairs.device).unsqueeze(1) * (size + 1)
    return torch.bincount((pairs + offsets).flatten(), minlength=n * (size + 1)).view(n, size + 1)[:, :size]


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor, empty: float) -> torch.Tensor:
    return numerator / denominator if denominator > 0 else numerator.new_tensor(empty, dtype=torch.float32)


class SegmentationMetrics(torch.nn.Module):
    """The loss (mean over samples), label metrics plus, for the regression output, the MSE of
    the probabilities (the original study), and with ``challenge`` (one-channel membrane outputs) the ISBI
    Rand error and VI; ``overlap`` (``miou_image`` and ``mdice``) and ``ignore_index`` as in
    :class:`ClassCounts`."""

    def __init__(self, task: str, out_channels: int, prefix: str, challenge: bool = False, overlap: bool = True, ignore_index: int | None = None) -> None:
        super().__init__()
        self.task, self.ignore_index = task, ignore_index
        # a metric rather than self.log at every step: Lightning's per-call bookkeeping cost more
        # than the update (`make bench`); NaN checks off, the FiniteLoss guard stops a NaN run
        self.loss = MeanMetric(nan_strategy="disable")
        self.labels = ClassCounts(2 if task != "multiclass" else out_channels, overlap, ignore_index, prefix)
        self.mse = MeanSquaredError() if task == "regression" else None
        self.challenge = InstanceScores(prefix) if challenge and task != "multiclass" else None
        self.prefix = prefix

    @property
    def batches(self) -> int:
        """Batches updated since the last reset."""
        return self.loss.update_count

    def update(self, probabilities: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        self.loss.update(loss.detach(), weight=len(target))
        if self.task == "multiclass":
            self.labels.update(probabilities.argmax(1), target)
            return
        predicted, true = (probabilities > 0.5).long().squeeze(1), (target > 0.5).long().squeeze(1)
        if self.ignore_index is not None:
            true = torch.where(target.squeeze(1) == self.ignore_index, self.ignore_index, true)
        self.labels.update(predicted, true)
        if self.challenge is not None:
            self.challenge.update(predicted, true)
        if self.mse is not None:
            if self.ignore_index is None:
                self.mse.update(probabilities, target)
            else:  # unlabelled pixels (removed=ignore on eliret's regression) count in no metric
                labelled = target != self.ignore_index
                self.mse.update(probabilities[labelled], target[labelled])

    def compute(self) -> dict[str, torch.Tensor]:
        """Every metric over the batches since the last reset, synced across DDP processes."""
        values = {f"{self.prefix}loss": self.loss.compute(), **self.labels.compute()}
        if self.mse is not None:
            values[f"{self.prefix}mse"] = self.mse.compute()
        if self.challenge is not None:
            values.update(self.challenge.compute())
        return values

    def reset(self) -> None:
        for metric in (self.loss, self.labels, self.mse, self.challenge):
            if metric is not None:
                metric.reset()
