"""The metric set logged for every split, from torchmetrics (synced across DDP processes)."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric, MeanSquaredError, Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.segmentation import DiceScore, MeanIoU
from torchmetrics.wrappers.abstract import WrapperMetric

from src.models.challenge_metrics import InstanceScore


def label_metrics(num_classes: int, overlap: bool = True, ignore_index: int | None = None) -> MetricCollection:
    """Metrics on class-index maps (N, H, W); binary tasks count as 2 classes (background too).

    ``miou`` is dataset-level (intersections and unions summed over all images, then averaged
    over classes); ``miou_image`` averages each image's mIoU, as torchmetrics' MeanIoU does;
    ``mdice`` is dataset-level Dice averaged over classes; ``acc`` is pixel accuracy.
    ``overlap=False`` leaves out ``miou_image`` and ``mdice``, whose one-hot conversion of every
    batch costs more than the other two together (the training split, updated every step). The
    inputs are our own argmax/threshold maps, so torchmetrics' argument checks are off.
    ``ignore_index``: target pixels of that value count in no metric (see :class:`SkipUnlabelled`).
    """
    metrics = {
        "acc": MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False, ignore_index=ignore_index),
        "miou": MulticlassJaccardIndex(num_classes=num_classes, average="macro", validate_args=False, ignore_index=ignore_index),
    }
    if overlap:
        overlap_format = "index" if ignore_index is None else "one-hot"
        miou_image = MeanIoU(num_classes=num_classes, input_format=overlap_format)
        mdice = DiceScore(num_classes=num_classes, average="macro", aggregation_level="global", input_format=overlap_format)
        if ignore_index is not None:
            miou_image, mdice = (SkipUnlabelled(m, num_classes, ignore_index) for m in (miou_image, mdice))
        metrics["miou_image"], metrics["mdice"] = miou_image, mdice
    return MetricCollection(metrics)


class SkipUnlabelled(WrapperMetric):
    """A one-hot overlap metric (torchmetrics' MeanIoU, DiceScore: neither takes an
    ``ignore_index``) fed index maps whose unlabelled pixels are all-zero in both one-hot maps, so
    they count as no class's hit, miss or false alarm."""

    def __init__(self, metric: Metric, num_classes: int, ignore_index: int) -> None:
        super().__init__()
        self.metric, self.num_classes, self.ignore_index = metric, num_classes, ignore_index

    def update(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        labelled = (target != self.ignore_index).unsqueeze(1)
        classes = torch.arange(self.num_classes, device=target.device).view(1, -1, 1, 1)
        self.metric.update((predicted.unsqueeze(1) == classes) & labelled, (target.unsqueeze(1) == classes) & labelled)

    def compute(self) -> torch.Tensor:
        return self.metric.compute()

    def reset(self) -> None:
        self.metric.reset()
        super().reset()


class SegmentationMetrics(torch.nn.Module):
    """The loss (mean over samples), label metrics plus, for the regression output, the MSE of
    the probabilities (the notes), and with ``challenge`` (one-channel membrane outputs) the ISBI
    Rand error and VI; ``overlap`` and ``ignore_index`` as in ``label_metrics``."""

    def __init__(self, task: str, out_channels: int, prefix: str, challenge: bool = False, overlap: bool = True, ignore_index: int | None = None) -> None:
        super().__init__()
        self.task, self.ignore_index = task, ignore_index
        # a metric rather than self.log at every step: Lightning's per-call bookkeeping cost more
        # than the update (`make bench`); NaN checks off, the FiniteLoss guard stops a NaN run
        self.loss = MeanMetric(nan_strategy="disable")
        self.labels = label_metrics(2 if task != "multiclass" else out_channels, overlap, ignore_index).clone(prefix=prefix)
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
        if self.ignore_index is not None:
            true = torch.where(target.squeeze(1) == self.ignore_index, self.ignore_index, true)
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
