"""The metric set logged for every split, from torchmetrics (synced across DDP processes)."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric, MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.segmentation import DiceScore, MeanIoU

from src.models.challenge_metrics import InstanceScore


def label_metrics(num_classes: int, overlap: bool = True) -> MetricCollection:
    """Metrics on class-index maps (N, H, W); binary tasks count as 2 classes (background too).

    ``miou`` is dataset-level (intersections and unions summed over all images, then averaged
    over classes); ``miou_image`` averages each image's mIoU, as torchmetrics' MeanIoU does;
    ``mdice`` is dataset-level Dice averaged over classes; ``acc`` is pixel accuracy.
    ``overlap=False`` leaves out ``miou_image`` and ``mdice``, whose one-hot conversion of every
    batch costs more than the other two together (the training split, updated every step). The
    inputs are our own argmax/threshold maps, so torchmetrics' argument checks are off.
    """
    metrics = {
        "acc": MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False),
        "miou": MulticlassJaccardIndex(num_classes=num_classes, average="macro", validate_args=False),
    }
    if overlap:
        metrics["miou_image"] = MeanIoU(num_classes=num_classes, input_format="index")
        metrics["mdice"] = DiceScore(num_classes=num_classes, average="macro", aggregation_level="global", input_format="index")
    return MetricCollection(metrics)


class SegmentationMetrics(torch.nn.Module):
    """The loss (mean over samples), label metrics plus, for the regression output, the MSE of
    the probabilities (the notes), and with ``challenge`` (one-channel membrane outputs) the ISBI
    Rand error and VI; ``overlap`` as in ``label_metrics``."""

    def __init__(self, task: str, out_channels: int, prefix: str, challenge: bool = False, overlap: bool = True) -> None:
        super().__init__()
        self.task = task
        # a metric rather than self.log at every step: Lightning's per-call bookkeeping cost more
        # than the update (`make bench`); NaN checks off, the FiniteLoss guard stops a NaN run
        self.loss = MeanMetric(nan_strategy="disable")
        self.labels = label_metrics(2 if task != "multiclass" else out_channels, overlap).clone(prefix=prefix)
        self.mse = MeanSquaredError() if task == "regression" else None
        self.challenge = (
            MetricCollection({"rand_error": InstanceScore("rand_error"), "vi": InstanceScore("vi")}, prefix=prefix)
            if challenge and task != "multiclass"
            else None
        )
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
        self.labels.update(predicted, true)
        if self.challenge is not None:
            self.challenge.update(predicted, true)
        if self.mse is not None:
            self.mse.update(probabilities, target)

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
