"""Background randomisation (Xiao et al. 2020, "Noise or Signal: The Role of Image Backgrounds in
Object Recognition", their Mixed-Rand set): each chosen training image keeps its object's pixels
and labels and takes the rest from another training image, whose own object was removed and
filled by ROAD's imputation. A baseline for the reduction that uses the same ground truth as the
oracle: it breaks any link between an object and its background instead of removing pixels."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from src.config.errors import UserInputError
from src.data.contract import experiment_data
from src.data.segmentation_dataset import SegmentationTensors, like_stored, to_unit
from src.reduction.masking import fill_removed
from src.reduction.relevance import object_pixels

log = logging.getLogger(__name__)


def swap_backgrounds(images: torch.Tensor, objects: torch.Tensor, share: float, seed: int, impute_noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` (N, C, H, W, stored type) where a ``share`` of them, chosen from ``seed``, keep
    their ``objects`` pixels and take every other pixel from another image's background (its
    object imputed). Returns the new images and, for each image, the index of the image whose
    background it got (its own where unchanged)."""
    n = len(images)
    rng = np.random.default_rng([seed, 0xB6])
    chosen = rng.permutation(n)[: round(share * n)]
    donors = torch.arange(n)
    for i in chosen:  # another image, uniformly (an image alone in its set keeps its own)
        donors[i] = int((i + 1 + rng.integers(n - 1)) % n) if n > 1 else int(i)
    needed = sorted({int(donors[i]) for i in chosen})
    out = images.clone()
    if not needed:
        return out, donors
    emptied = fill_removed(to_unit(images[needed]), ~objects[needed], "impute", [(seed, 0xB6, j) for j in needed], impute_noise)
    background = {j: emptied[k] for k, j in enumerate(needed)}
    for i in chosen:
        mixed = torch.where(objects[i].unsqueeze(0), to_unit(images[i : i + 1])[0], background[int(donors[i])])
        out[i] = like_stored(mixed.unsqueeze(0), out.dtype)[0]
    return out, donors


class BackgroundRandomisation(Callback):
    """Args:
    share: the fraction of the training images whose background is swapped (Mixed-Rand: 1).
    seed: the run's seed: which images, which donors and the imputation's noise.
    impute_noise: the noise of the imputation that empties a donor's object.
    background_class: the class that is not an object (multi-class targets).
    """

    def __init__(self, share: float, seed: int, impute_noise: float, background_class: int) -> None:
        if not 0 <= share <= 1:
            raise UserInputError(f"background_swap.share={share} must be in [0, 1]: the fraction of training images whose background is swapped.")
        self.share, self.seed, self.impute_noise, self.background_class = share, seed, impute_noise, background_class

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # deterministic from the seed, so a resumed run rebuilds the same set
        dataset = experiment_data(trainer.datamodule).train_set
        if not isinstance(dataset, SegmentationTensors):
            raise UserInputError(f"background_swap needs a segmentation training set held in memory; {type(trainer.datamodule).__name__} has none.")
        if not dataset.valid_pixels().all():
            raise UserInputError("background_swap needs training images of one size (this set shares a canvas between sizes); set data.image_size.")
        objects = object_pixels(dataset.masks, self.background_class)
        images, donors = swap_backgrounds(dataset.images, objects, self.share, self.seed, self.impute_noise)
        dataset.replace_images(images)
        swapped = int((donors != torch.arange(len(donors))).sum())
        log.info("background_swap: %d of %d training images carry another image's background", swapped, len(donors))
