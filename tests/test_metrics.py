"""The shared-state metrics give the values of the torchmetrics metrics they replace."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchmetrics.segmentation import DiceScore, MeanIoU

from src.models.metrics import ClassCounts, SegmentationMetrics


def _batches(classes: int, unlabelled: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed batches: noisy predictions of blocky targets, one image without class 1 at all,
    and (with ``unlabelled``) a band of unlabelled pixels."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for n in (4, 3, 5):
        target = torch.randint(0, classes, (n, 4, 4), generator=generator).repeat_interleave(4, 1).repeat_interleave(4, 2)
        noise = torch.rand(target.shape, generator=generator) < 0.2
        predicted = torch.where(noise, torch.randint(0, classes, target.shape, generator=generator), target)
        target[0][target[0] == 1] = 0
        predicted[0][predicted[0] == 1] = 0
        if unlabelled is not None:
            target[:, 5:7] = unlabelled
        batches.append((predicted, target))
    return batches


def _today(classes: int, batches: list[tuple[torch.Tensor, torch.Tensor]], unlabelled: int | None) -> dict[str, torch.Tensor]:
    """The definitions before the shared state: four torchmetrics metrics, the one-hot pair
    (MeanIoU and DiceScore have no ignore_index) with unlabelled pixels in no class."""
    acc = MulticlassAccuracy(num_classes=classes, average="micro", ignore_index=unlabelled)
    miou = MulticlassJaccardIndex(num_classes=classes, average="macro", ignore_index=unlabelled)
    per_class = MulticlassJaccardIndex(num_classes=classes, average="none", ignore_index=unlabelled)
    one_hot = "index" if unlabelled is None else "one-hot"
    miou_image = MeanIoU(num_classes=classes, input_format=one_hot)
    mdice = DiceScore(num_classes=classes, average="macro", aggregation_level="global", input_format=one_hot)
    class_ids = torch.arange(classes).view(1, -1, 1, 1)
    for predicted, target in batches:
        acc.update(predicted, target)
        miou.update(predicted, target)
        per_class.update(predicted, target)
        if unlabelled is None:
            overlap = (predicted, target)
        else:
            labelled = (target != unlabelled).unsqueeze(1)
            overlap = ((predicted.unsqueeze(1) == class_ids) & labelled, (target.unsqueeze(1) == class_ids) & labelled)
        miou_image.update(*overlap)
        mdice.update(*overlap)
    # miou_object: the object classes' IoU (every class is present in these batches)
    objects = per_class.compute()[1:].mean()
    return {"acc": acc.compute(), "miou": miou.compute(), "miou_object": objects, "miou_image": miou_image.compute(), "mdice": mdice.compute()}


@pytest.mark.parametrize("deterministic", [False, True], ids=["bincount", "deterministic"])
@pytest.mark.parametrize(("classes", "unlabelled"), [(2, None), (3, None), (3, 255), (2, 7)])
def test_shared_state_values_equal_the_torchmetrics_definitions(classes: int, unlabelled: int | None, deterministic: bool) -> None:
    batches = _batches(classes, unlabelled)
    shared = ClassCounts(classes, ignore_index=unlabelled)
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        for predicted, target in batches:
            shared.update(predicted, target)
    finally:
        torch.use_deterministic_algorithms(before)
    values, expected = shared.compute(), _today(classes, batches, unlabelled)
    assert values.keys() == expected.keys()
    for name, value in expected.items():
        # to the last bit or two: MeanIoU averages its sum over a copy per class (nanmean)
        torch.testing.assert_close(values[name], value, rtol=1e-6, atol=0, msg=name)


def test_the_training_split_counts_only_acc_and_miou() -> None:
    predicted, target = _batches(2, None)[0]
    shared = ClassCounts(2, per_image=False, prefix="train/")
    shared.update(predicted, target)
    assert set(shared.compute()) == {"train/acc", "train/miou", "train/miou_object"}
    assert {name for name, _ in shared.named_buffers()} | set(shared._defaults) == {"confusion"}


def test_segmentation_metrics_log_the_same_names() -> None:
    metrics = SegmentationMetrics("regression", 1, prefix="test/")
    probabilities = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    metrics.update(probabilities, (probabilities > 0.4).float(), torch.tensor(0.3))
    values = metrics.compute()
    assert set(values) == {"test/loss", "test/acc", "test/miou", "test/miou_object", "test/miou_image", "test/mdice", "test/mse"}
    assert all(torch.isfinite(v) for v in values.values())
