"""LightningDataModule for the eliret set (generated locally; the original set also works)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from src.config.errors import UserInputError
from src.config.schemas import check_choice, settings_of
from src.config.schemas.data import ELIRET_TEST_SPLITS, EliretDataSchema
from src.data.augment import resolve
from src.data.eliret_generator import SPLIT_FILES, EliretSpec, ensure_eliret
from src.data.png_pairs import load_pairs, read_split_csv
from src.data.segmentation_dataset import SegmentationTensors, SplitDataModule, make_loader

# test_split: the original study's 32x32 test CSV, or the six larger maior images (off-centre shapes)


class EliretDataModule(SplitDataModule):
    """32x32 noisy ellipses/rectangles with ideal binary masks, split by the original study's CSVs.

    Inputs and targets are scaled to [0, 1] (the original study found [-1, 1] inputs fail without batch
    norm), so the module trains as a sigmoid regression with MSE by default.
    """

    # robustness=standard adds this shift to its suite (the original study's `maior` effect: shapes away from the centre)
    natural_shifts = ("off_centre",)

    in_channels = 1
    out_channels = 1
    task = "regression"
    mean = (0.0,)
    std = (1.0,)

    def __init__(
        self,
        data_dir: str,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        generate: bool,
        n_per_class: int,
        image_size: int,
        noise: float,
        max_offset: float,
        max_rotation: float,
        generator_seed: int,
        occluders: int,
        augment: Callable | str | None,
        test_split: str,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["augment"])
        self.settings = settings_of(EliretDataSchema, self.hparams)
        self.augment = resolve(augment, recommended=None)
        if batch_size < 1:
            raise ValueError(f"data.batch_size={batch_size} must be >= 1")
        check_choice("data.test_split", test_split, ELIRET_TEST_SPLITS)
        self.data_dir = Path(data_dir)
        self.spec = EliretSpec(
            n_per_class=n_per_class,
            size=image_size,
            noise=noise,
            max_offset=max_offset,
            max_rotation=max_rotation,
            seed=generator_seed,
            occluders=occluders,
        )
        self.input_names: dict[str, list[str]] = {}  # input file names per split, in split order

    def prepare_data(self) -> None:
        ensure_eliret(self.spec, self.data_dir, allow_generate=self.settings.generate)

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
        if self.settings.test_split == "maior":
            self.splits["test"] = ConcatDataset([_one_pair(x, y) for x, y in maior_pairs(self.data_dir)])

    def test_dataloader(self) -> DataLoader:
        if self.settings.test_split == "maior":  # the larger images differ in size: one per batch
            return make_loader(self.splits["test"], {**self.hparams, "batch_size": 1}, shuffle=False)
        return super().test_dataloader()


def maior_pairs(data_dir: Path) -> list[tuple[Path, Path]]:
    """The larger off-centre test images ``maiorNx.png`` with their masks ``maiorNy.png``."""
    pairs = [(x, x.with_name(x.name.replace("x.png", "y.png"))) for x in sorted(Path(data_dir).glob("maior*x.png"))]
    if not pairs:
        raise UserInputError(f"no maiorNx.png images in {data_dir}; regenerate the set or use data.test_split=test.")
    missing = [y.name for _, y in pairs if not y.exists()]
    if missing:
        raise UserInputError(f"{data_dir} lacks the masks {', '.join(missing)} of its maior images; restore them.")
    return pairs


def _one_pair(x_path: Path, y_path: Path) -> SegmentationTensors:
    images, masks = load_pairs([(x_path, y_path)])
    return SegmentationTensors(_to_unit(images), _to_unit(masks))


def _to_unit(array: np.ndarray) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 in [0, 1]."""
    return torch.from_numpy(array).float().div_(255.0).unsqueeze(1)
