"""LightningDataModule for the eliret set (generated locally; the original set also works)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from src.data.augment import resolve
from src.data.eliret_generator import SPLIT_FILES, EliretSpec, ensure_eliret
from src.data.png_pairs import load_pairs, read_split_csv
from src.data.segmentation_dataset import SegmentationTensors, SplitDataModule


class EliretDataModule(SplitDataModule):
    """32x32 noisy ellipses/rectangles with ideal binary masks, split by the notes' CSVs.

    Inputs and targets are scaled to [0, 1] (the notes found [-1, 1] inputs fail without batch
    norm), so the module trains as a sigmoid regression with MSE by default.
    """

    in_channels = 1
    out_channels = 1
    task = "regression"
    mean = (0.0,)
    std = (1.0,)

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 10,
        num_workers: int = 0,
        pin_memory: bool = False,
        generate: bool = True,
        n_per_class: int = 100,
        image_size: int = 32,
        noise: float = 0.08,
        max_offset: float = 0.0,
        max_rotation: float = 0.0,
        generator_seed: int = 0,
        augment: Callable | str | None = "auto",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["augment"])
        self.augment = resolve(augment, recommended=None)
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size} must be >= 1")
        self.data_dir = Path(data_dir)
        self.spec = EliretSpec(
            n_per_class=n_per_class,
            size=image_size,
            noise=noise,
            max_offset=max_offset,
            max_rotation=max_rotation,
            seed=generator_seed,
        )
        self.input_names: dict[str, list[str]] = {}  # input file names per split, in split order

    def prepare_data(self) -> None:
        ensure_eliret(self.spec, self.data_dir, allow_generate=self.hparams.generate)

    def setup(self, stage: str | None = None) -> None:
        # Loaded once; the training split is replaced explicitly (replace_images), never reloaded.
        if self.splits:
            return
        ensure_eliret(self.spec, self.data_dir, allow_generate=False)
        for split, csv_name in SPLIT_FILES.items():
            pairs = read_split_csv(self.data_dir / csv_name)
            self.input_names[split] = [x.name for x, _ in pairs]
            images, masks = load_pairs(pairs)
            transform = self.augment if split == "train" else None
            self.splits[split] = SegmentationTensors(_to_unit(images), _to_unit(masks), transform=transform)


def _to_unit(array: np.ndarray) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 in [0, 1]."""
    return torch.from_numpy(array).float().div_(255.0).unsqueeze(1)
