"""The metric set logged for every split, from torchmetrics (synced across DDP processes)."""

from __future__ import annotations

import torch
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.segmentation import DiceScore, MeanIoU

from src.models.challenge_metrics import InstanceScore


def label_metrics(num_classes: int) -> MetricCollection:
    """Metrics on class-index maps (N, H, W); binary tasks count as 2 classes (background too).

    ``miou`` is dataset-level (intersections and unions summed over all images, then averaged
    over classes); ``miou_image`` averages each image's mIoU, as torchmetrics' MeanIoU does;
    ``mdice`` is dataset-level Dice averaged over classes; ``acc`` is pixel accuracy.
    """
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=num_classes, average="micro"),
            "miou": MulticlassJaccardIndex(num_classes=num_classes, average="macro"),
            "miou_image": MeanIoU(num_classes=num_classes, input_format="index"),
            "mdice": DiceScore(num_classes=num_classes, average="macro", aggregation_level="global", input_format="index"),
        }
    )


class SegmentationMetrics(torch.nn.Module):
    """Label metrics plus, for the regression output, the MSE of the probabilities (the notes),
    and with ``challenge`` (one-channel membrane outputs) the ISBI Rand error and VI."""

    def __init__(self, task: str, out_channels: int, prefix: str, challenge: bool = False) -> None:
        super().__init__()
        self.task = task
        self.labels = label_metrics(2 if task != "multiclass" else out_channels).clone(prefix=prefix)
        self.mse = MeanSquaredError() if task == "regression" else None
        self.challenge = (
            MetricCollection({"rand_error": InstanceScore("rand_error"), "vi": InstanceScore("vi")}, prefix=prefix)
            if challenge and task != "multiclass"
            else None
        )
        self.prefix = prefix

    def update(self, probabilities: torch.Tensor, target: torch.Tensor) -> None:
        if self.task == "multiclass":
            self.labels.update(probabilities.argmax(1), target)
            return
        predicted, true = (probabilities > 0.5).long().squeeze(1), (target > 0.5).long().squeeze(1)
        self.labels.update(predicted, true)
        if self.challenge is not None:
            self.challenge.update(predicted, true)
        if self.mse is not None:
            self.mse.update(probabilities, target)

    def as_loggable(self) -> dict[str, object]:
        """Metric objects keyed by name, for ``LightningModule.log_dict`` (which computes,
        syncs and resets them at epoch end)."""
        logged: dict[str, object] = dict(self.labels.items())
        if self.mse is not None:
            logged[f"{self.prefix}mse"] = self.mse
        if self.challenge is not None:
            logged.update(self.challenge.items())
        return logged
