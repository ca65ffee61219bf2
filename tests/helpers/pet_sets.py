"""A small Oxford-IIIT Pet set, generated in exactly the official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

BREEDS = [("Abyssinian", 1, 1), ("Bengal", 2, 1), ("beagle", 3, 2), ("pug", 4, 2)]  # name, class id, species (1 cat, 2 dog)


def make_pet(root: Path, per_breed: int = 5, size: tuple[int, int] = (40, 48), varied: bool = False) -> Path:
    """``root/oxford-iiit-pet`` with a synthetic image + trimap per entry and both split lists."""
    base = root / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(0)
    trainval, test = [], []
    for name, class_id, species in BREEDS:
        for i in range(1, per_breed + 1):
            image_id = f"{name}_{i}"
            h, w = (size[0] + 8 * (i % 3), size[1] + 4 * (i % 2)) if varied else size
            trimap = np.full((h, w), 2, np.uint8)
            trimap[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 3
            trimap[h // 4 + 2 : 3 * h // 4 - 2, w // 4 + 2 : 3 * w // 4 - 2] = 1
            image = (rng.random((h, w, 3)) * 80 + (trimap == 1)[..., None] * 150).astype(np.uint8)
            Image.fromarray(image).save(base / "images" / f"{image_id}.jpg")
            Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{image_id}.png")
            line = f"{image_id} {class_id} {species} {i}"
            (test if i == per_breed else trainval).append(line)
    (base / "annotations" / "trainval.txt").write_text("\n".join(trainval) + "\n")
    (base / "annotations" / "test.txt").write_text("\n".join(test) + "\n")
    return base
