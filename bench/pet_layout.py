"""A synthetic Oxford-IIIT Pet in the real on-disk layout (images/*.jpg, annotations/trimaps/*.png,
annotations/trainval.txt and test.txt), any number of images: the download does not work here,
and a Pet-sized set (7,349 images) is what the memory figures need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PET_SIZE = 7349  # images in the real set
BREEDS = 37


def write_pet(root: Path, count: int, size: tuple[int, int] = (300, 400), seed: int = 0) -> Path:
    """``root/oxford-iiit-pet`` with ``count`` images (a pet with a 3-px border, the rest
    background), about 1 in 8 listed in test.txt; an existing complete copy is reused. Cats are
    ellipses and dogs boxes, so the species is learnable (the early-exit bench trains on it)."""
    base = Path(root) / "oxford-iiit-pet"
    if (base / "annotations" / "test.txt").is_file():
        return base
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    trainval, test = [], []
    for i in range(count):
        breed = i % BREEDS
        # species from the case of the name, as in the real set: capitals are cats
        image_id = f"{'Cat' if breed < 12 else 'dog'}breed{breed}_{i}"
        cy, cx, ry, rx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width, rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width
        cat = breed < 12
        radius = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 if cat else np.maximum(((yy - cy) / ry) ** 2, ((xx - cx) / rx) ** 2)
        trimap = np.where(radius < 0.8, 1, np.where(radius < 1.0, 3, 2)).astype(np.uint8)
        image = (rng.random((height, width, 3)) * 90 + (trimap == 1)[..., None] * 140).astype(np.uint8)
        Image.fromarray(image).save(base / "images" / f"{image_id}.jpg", quality=85)
        Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{image_id}.png")
        line = f"{image_id} {breed + 1} {1 if cat else 2} {i // BREEDS + 1}"
        (test if i % 8 == 7 else trainval).append(line)
    (base / "annotations" / "trainval.txt").write_text("\n".join(trainval) + "\n")
    (base / "annotations" / "test.txt").write_text("\n".join(test) + "\n")  # last: marks the copy complete
    return base
