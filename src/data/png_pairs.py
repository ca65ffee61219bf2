"""Reading image/mask pairs listed in ``x;y`` CSV files, with errors that name the bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.config.errors import UserInputError
from src.storage.image_files import read_gray


def read_split_csv(csv_path: Path) -> list[tuple[Path, Path]]:
    """Pairs of (input, target) paths from lines like ``000x.png;000y.png``, relative to the CSV."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise UserInputError(f"split file {csv_path} not found; restore it or regenerate the data set.")
    pairs = []
    for number, line in enumerate(csv_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(";")]
        if len(fields) != 2 or not all(fields):
            raise UserInputError(f"{csv_path}:{number}: expected 'input.png;target.png', got {line!r}. Fix that line.")
        paths = tuple(csv_path.parent / f for f in fields)
        for path in paths:
            if not path.exists():
                raise UserInputError(f"{csv_path}:{number} names {path.name}, which does not exist in {csv_path.parent}. Restore the file or remove the line.")
        pairs.append(paths)
    if not pairs:
        raise UserInputError(f"split file {csv_path} lists no image pairs; it must not be empty.")
    return pairs


def load_mask(path: Path) -> np.ndarray:
    """A binary mask as (H, W) uint8 0/255; 0/1 masks are scaled. Any other value is refused: it
    would silently become a soft target."""
    mask = read_gray(path)
    values = np.unique(mask)
    if set(values.tolist()) <= {0, 1}:
        return mask * np.uint8(255)
    if not set(values.tolist()) <= {0, 255}:
        shown = ", ".join(map(str, values[:8].tolist())) + (", ..." if len(values) > 8 else "")
        raise UserInputError(
            f"mask {path} holds values {shown}; a mask holds only 0 and 255 (or 0 and 1). Threshold it "
            "(e.g. > 127) and save it as PNG (JPEG compression adds in-between values)."
        )
    return mask


def load_pairs(pairs: list[tuple[Path, Path]]) -> tuple[np.ndarray, np.ndarray]:
    """Stack pairs into (N, H, W) uint8 arrays, checking that every image matches its mask and
    that all pairs share one size (they are batched together)."""
    images, masks = [], []
    for x_path, y_path in pairs:
        image, mask = read_gray(x_path), load_mask(y_path)
        if image.shape != mask.shape:
            raise UserInputError(
                f"image {x_path.name} is {image.shape[1]}x{image.shape[0]} but its mask {y_path.name} is "
                f"{mask.shape[1]}x{mask.shape[0]}; a mask must have its image's size. Fix or remove the pair."
            )
        if images and image.shape != images[0].shape:
            raise UserInputError(
                f"image {x_path.name} is {image.shape[1]}x{image.shape[0]} but {pairs[0][0].name} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; all images of a split must share one size."
            )
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)
