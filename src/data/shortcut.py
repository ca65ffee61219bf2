"""LightningDataModule for the shortcut set: a spurious background cue that a model can take
instead of the objects' shapes (see :mod:`src.data.shortcut_generator`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from src.config.errors import UserInputError
from src.config.schemas import check_choice, settings_of
from src.config.schemas.data import ShortcutDataSchema
from src.data.augment import resolve
from src.data.segmentation_dataset import SegmentationTensors, SplitDataModule
from src.data.shortcut_generator import TEST_SPLITS, ShortcutSpec, draw_sample, ensure_shortcut, split_size
from src.storage.image_files import read_gray, read_raw_mask


class ShortcutDataModule(SplitDataModule):
    """Three classes (background, ellipse, rectangle) on 32x32 gray images whose background
    stripes predict the object's class in train and val with probability ``cue_correlation``.

    ``test_split`` (aligned, reversed or neutral) is the test set of ``test/...`` and of
    robustness; every run is also tested on all three (``test_<split>/...`` in metrics.json).
    No augmentation by default: a quarter turn would swap the stripes' orientation, i.e. the cue.
    """

    in_channels = 1
    out_channels = 3
    task = "multiclass"
    mean = (0.0,)
    std = (1.0,)
    test_splits = TEST_SPLITS

    def __init__(
        self,
        data_dir: str,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        generate: bool,
        n_train: int,
        n_val: int,
        n_test: int,
        image_size: int,
        cue_correlation: float,
        noise: float,
        contrast: float,
        min_half_axis: float,
        max_half_axis: float,
        stripe_amplitude: float,
        stripe_period: int,
        cue: str,
        cue_guard: int,
        balanced_val: bool,
        generator_seed: int,
        augment: Callable | str | None,
        test_split: str,
        cue_place: str,
        patch_size: int,
        data_seed: int | None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["augment"])
        self.settings = settings_of(ShortcutDataSchema, self.hparams)
        check_choice("data.test_split", test_split, TEST_SPLITS)
        self.augment = resolve(augment, recommended=None)
        # each data seed's set in a folder of its own (its test splits are the same files)
        self.data_dir = Path(data_dir) if data_seed is None else Path(data_dir) / f"data_seed_{data_seed}"
        self.spec = ShortcutSpec(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            size=image_size,
            cue_correlation=cue_correlation,
            noise=noise,
            contrast=contrast,
            min_half_axis=min_half_axis,
            max_half_axis=max_half_axis,
            stripe_amplitude=stripe_amplitude,
            stripe_period=stripe_period,
            seed=generator_seed,
            cue=cue,
            cue_guard=cue_guard,
            balanced_val=balanced_val,
            cue_place=cue_place,
            patch_size=patch_size,
            data_seed=data_seed,
        )

    def prepare_data(self) -> None:
        ensure_shortcut(self.spec, self.data_dir, allow_generate=self.settings.generate)

    def setup(self, stage: str | None = None) -> None:
        # Loaded once; the training split is replaced explicitly (replace_images), never reloaded.
        if self.splits:
            return
        ensure_shortcut(self.spec, self.data_dir, allow_generate=False)
        for split in ("train", "val", *(f"test_{name}" for name in TEST_SPLITS)):
            images, classes = load_split(self.data_dir / split, split_size(self.spec, split))
            self.splits[split] = SegmentationTensors(images, classes, transform=self.augment if split == "train" else None)
        self.splits["test"] = self.splits[f"test_{self.settings.test_split}"]

    def training_cue(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images without their cue and the cue the generator added to each, both
        (N, 1, H, W) in [0, 1], in training-set order: what a reduction's cue share is measured
        against (:func:`src.reduction.removal_measures.cue_share`)."""
        samples = [draw_sample(self.spec, "train", index) for index in range(self.spec.n_train)]
        cue_free = torch.from_numpy(np.stack([s.cue_free for s in samples])).float().div_(255.0).unsqueeze(1)
        component = torch.from_numpy(np.stack([s.cue_component for s in samples])).float().unsqueeze(1)
        return cue_free, component


def load_split(folder: Path, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, H, W) float images in [0, 1] and (N, H, W) long classes of one split folder."""
    images, classes = [], []
    for index in range(count):
        images.append(read_gray(folder / f"{index:04d}x.png"))
        classes.append(read_raw_mask(folder / f"{index:04d}y.png").astype(np.uint8))
    found = np.unique(np.stack(classes))
    if not set(found.tolist()) <= {0, 1, 2}:
        raise UserInputError(f"the masks in {folder} hold values {found.tolist()}; the shortcut set's classes are 0, 1, 2. Delete the folder to regenerate it.")
    return torch.from_numpy(np.stack(images)).float().div_(255.0).unsqueeze(1), torch.from_numpy(np.stack(classes)).long()
