"""The reduction's fills on a Pet-sized image: seconds per image of each fill (the impute fill
solves one sparse linear system per image), and what that makes for a whole Pet training set."""

from __future__ import annotations

import torch

from bench.pet_layout import PET_SIZE
from bench.timing import interleaved, median
from src.config.schemas.reduction import FILLS
from src.reduction.masking import fill_stored, keep_mask

PET_TRAIN = round(PET_SIZE * 0.8)  # the Pet data module's 80% training split


def pet_like(count: int, size: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` uint8 RGB images (as Pet stores them) and keep-masks of one and of three
    cumulative rounds at p = 90 (10% and 27% of the pixels removed) from smooth random maps."""
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(count, 3, size, size, generator=generator) * 255).to(torch.uint8)
    relevance = torch.nn.functional.avg_pool2d(torch.rand(count, 1, size, size, generator=generator), 9, 1, 4)[:, 0]
    present = torch.ones(count, size, size, dtype=torch.bool)
    one = keep_mask(relevance, present, 90)
    three = keep_mask(relevance, keep_mask(relevance, one, 90), 90)
    return images, torch.stack([one, three])


def measure(repetitions: int, count: int) -> dict[str, object]:
    images, masks = pet_like(count)
    arms = {
        f"{fill}@{rounds}": (lambda f=fill, k=keep: fill_stored(images, k, f))
        for fill in FILLS
        for rounds, keep in (("1 round", masks[0]), ("3 rounds", masks[1]))
    }
    times = interleaved(arms, repetitions)
    out: dict[str, object] = {"images": count, "image_size": 128, "pet_train_images": PET_TRAIN, "fills": {}}
    for name, values in times.items():
        per_image = median(values) / count
        out["fills"][name] = {"ms_per_image": 1000 * per_image, "pet_train_set_s": per_image * PET_TRAIN}
    return out
