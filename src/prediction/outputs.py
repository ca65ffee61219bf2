"""What prediction writes per image: a 16-bit probability PNG, a label mask PNG, an optional
overlay figure, and per-image metrics where a label is known."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_jaccard_index,
    multiclass_accuracy,
    multiclass_jaccard_index,
)
from torchmetrics.functional.segmentation import dice_score

from src.loggers.figures import save_figure, subplots
from src.storage.atomic import write_bytes_atomic

# distinct colours for class indices in palette PNGs (class 0 black)
PALETTE = [0, 0, 0, 230, 25, 75, 60, 180, 75, 255, 225, 25, 0, 130, 200, 245, 130, 48, 145, 30, 180, 70, 240, 240]


def foreground(probabilities: torch.Tensor, background_class: int = 0) -> torch.Tensor:
    """(H, W) probability of the foreground: the one channel, or every class but the background."""
    if len(probabilities) == 1:
        return probabilities[0]
    return 1.0 - probabilities[background_class]


def labels(probabilities: torch.Tensor, threshold: float) -> torch.Tensor:
    """(H, W) long: thresholded one-channel output, else the most probable class."""
    if len(probabilities) == 1:
        return (probabilities[0] >= threshold).long()
    return probabilities.argmax(0)


def write_png(path: Path, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())


def probability_png(probability: torch.Tensor) -> Image.Image:
    """16-bit gray: 65535 = probability 1 (8 bits would round away 1/256 steps near thresholds)."""
    return Image.fromarray((probability.clamp(0, 1).numpy() * 65535).round().astype(np.uint16))


def mask_png(label_map: torch.Tensor, classes: int) -> Image.Image:
    """Binary: 0/255 gray; multi-class: a palette PNG whose pixel values are the class indices."""
    array = label_map.numpy().astype(np.uint8)
    if classes <= 2:
        return Image.fromarray(array * 255)
    image = Image.fromarray(array, mode="P")
    image.putpalette(PALETTE + [0] * (768 - len(PALETTE)))
    return image


def overlay_figure(image: torch.Tensor, probability: torch.Tensor, label_map: torch.Tensor, path: Path, title: str) -> None:
    shown = image[0] if image.shape[0] == 1 else image[:3].permute(1, 2, 0)
    fig, axes = subplots(1, 3, figsize=(12, 4.2))
    axes[0].imshow(shown.numpy(), cmap="gray")
    axes[0].set_title("image")
    axes[1].imshow(probability.numpy(), cmap="inferno", vmin=0, vmax=1)
    axes[1].set_title("foreground probability")
    axes[2].imshow(shown.numpy(), cmap="gray")
    axes[2].imshow(np.ma.masked_equal(label_map.numpy(), 0), cmap="autumn", alpha=0.45, interpolation="nearest")
    axes[2].set_title("predicted mask")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def label_metrics(label_map: torch.Tensor, target: torch.Tensor, classes: int, ignore_index: int | None = None) -> dict[str, float]:
    """Pixel accuracy, IoU and Dice of one image against its label (multi-class: averaged over
    the classes present in the prediction or the label, background included, as torchmetrics'
    macro average), over the labelled pixels (target != ``ignore_index``).

    A binary image whose label and prediction are both empty scores IoU and Dice 1: the prediction
    is exactly right (MONAI's ``ignore_empty=False``, torchmetrics' ``zero_division=1``). Leaving
    it out instead would drop the very images where a false positive is the only possible error."""
    if target.shape != label_map.shape:
        raise ValueError(f"label is {tuple(target.shape)}, the image {tuple(label_map.shape)}")
    if ignore_index is not None:
        labelled = target != ignore_index
        if not labelled.any():  # no pixel to score: an error for the row, not a nan in the mean
            raise ValueError(f"every pixel of the label is the ignore index {ignore_index}: nothing to score")
        label_map, target = label_map[labelled][None], target[labelled][None]
    if classes <= 2:
        both_empty = not (label_map.any() or target.any())
        return {
            "acc": binary_accuracy(label_map, target).item(),
            "iou": binary_jaccard_index(label_map, target, zero_division=1.0).item(),
            "dice": 1.0 if both_empty else dice_score(label_map[None], target[None], num_classes=2, include_background=False, input_format="index").item(),
        }
    return {
        "acc": multiclass_accuracy(label_map, target, classes, average="micro").item(),
        "iou": multiclass_jaccard_index(label_map, target, classes).item(),
        "dice": dice_score(label_map[None], target[None], num_classes=classes, input_format="index", average="macro").item(),
    }
