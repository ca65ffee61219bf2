"""Small folder data sets in ``data=folder``'s layout, one per file format the issue names: a
bright blob (the foreground) on a noisy background, so a few steps learn something."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PALETTE = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]


def scene(rng: np.random.Generator, height: int, width: int, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float image in [0, 1] and (H, W) class map: class k > 0 is a disc of brightness k / classes."""
    image = rng.normal(0.2, 0.05, (height, width))
    labels = np.zeros((height, width), np.uint8)
    rows, cols = np.mgrid[:height, :width]
    for cls in range(1, classes):
        cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
        radius = rng.uniform(0.1, 0.2) * min(height, width)
        disc = (rows - cy) ** 2 + (cols - cx) ** 2 < radius**2
        labels[disc] = cls
        image[disc] = 0.3 + 0.6 * cls / classes
    return np.clip(image, 0, 1), labels


def write_folder(
    root: Path,
    n: int = 12,
    size: tuple[int, int] | list[tuple[int, int]] = (32, 32),
    image_format: str = "png",
    mask_format: str = "png",
    rgb: bool = False,
    classes: int = 2,
    mask_encoding: str = "binary255",
    bits: int = 8,
    unlabelled: bool = False,
    seed: int = 0,
) -> Path:
    """``root``/images and ``root``/masks with ``n`` pairs named img_000..; ``size`` is one
    (height, width) or one per image. mask_encoding: binary255 (0/255), binary1 (0/1), index
    (0..classes-1), palette (a palette PNG's indices), spread (0, 128, 255 for 3 classes).
    ``unlabelled`` marks a band of each mask 255 (data.ignore_index=255)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    sizes = size if isinstance(size, list) else [size] * n
    for i, (height, width) in enumerate(sizes):
        image, labels = scene(rng, height, width, classes)
        if bits == 16:
            pixels = Image.fromarray((image * 65535).astype(np.uint16))
        elif rgb:
            colour = np.stack([image, image * 0.8, 1 - image], -1)
            pixels = Image.fromarray((colour * 255).astype(np.uint8), "RGB")
        else:
            pixels = Image.fromarray((image * 255).astype(np.uint8), "L")
        pixels.save(root / "images" / f"img_{i:03d}.{image_format}", **({"quality": 95} if image_format == "jpg" else {}))
        if mask_encoding == "binary255":
            stored = labels * 255
        elif mask_encoding == "spread":
            stored = (labels * 127.5).round().astype(np.uint8)
        else:
            stored = labels.copy()
        if unlabelled:
            stored[: height // 8] = 255
        mask = Image.fromarray(stored.astype(np.uint8), "L")
        if mask_encoding == "palette":
            mask = Image.fromarray(stored.astype(np.uint8), "P")
            mask.putpalette(PALETTE + [0] * (768 - len(PALETTE)))
        mask.save(root / "masks" / f"img_{i:03d}.{mask_format}")
    return root
