"""ISBI 2012 EM membrane segmentation (serial-section TEM, Drosophila larva VNC)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from src.config.errors import UserInputError
from src.config.schemas import check_choice, settings_of
from src.config.schemas.data import LABEL_RESIZES, MembraneDataSchema
from src.data.augment import dihedral, resolve
from src.data.border_weights import border_weights
from src.data.segmentation_dataset import SegmentationTensors, SplitDataModule, make_loader
from src.storage.image_files import read_gray, read_stack

TIFF_FILES = {"image": "train-volume.tif", "label": "train-labels.tif", "test": "test-volume.tif"}


def _png_stack(folder: Path) -> tuple[list[str], np.ndarray | None]:
    names = sorted((p.name for p in folder.glob("*.png")), key=lambda n: (len(n), n))
    if not names:
        return [], None
    images = [read_gray(folder / name) for name in names]
    for name, image in zip(names, images):
        if image.shape != images[0].shape:
            raise UserInputError(f"{folder / name} is {image.shape[1]}x{image.shape[0]}, not {images[0].shape[1]}x{images[0].shape[0]} like {names[0]}.")
    return names, np.stack(images)


def read_membrane(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(train images, train labels, test images or None) as (N, H, W) uint8, from either the PNG
    layout (train/image, train/label, test/image) or the challenge's multi-page TIFF stacks."""
    data_dir = Path(data_dir)
    if (data_dir / "train" / "image").is_dir():
        image_names, images = _png_stack(data_dir / "train" / "image")
        label_names, labels = _png_stack(data_dir / "train" / "label")
        if images is None:
            raise UserInputError(f"no PNG images in {data_dir / 'train' / 'image'}; place the training images there.")
        if image_names != label_names:
            unpaired = sorted(set(image_names) ^ set(label_names))
            raise UserInputError(
                f"train/image has {len(image_names)} PNGs but train/label has {len(label_names)}; unpaired: "
                f"{', '.join(unpaired[:5])}. Every image needs a label with the same file name."
            )
        _, test = _png_stack(data_dir / "test" / "image")
    elif (data_dir / TIFF_FILES["image"]).exists():
        images = read_stack(data_dir / TIFF_FILES["image"])
        label_path = data_dir / TIFF_FILES["label"]
        if not label_path.exists():
            raise UserInputError(f"{label_path} is missing; it holds the labels of {TIFF_FILES['image']}.")
        labels = read_stack(label_path)
        if len(images) != len(labels):
            raise UserInputError(f"{TIFF_FILES['image']} has {len(images)} pages but {TIFF_FILES['label']} has {len(labels)}; they must pair page by page.")
        test_path = data_dir / TIFF_FILES["test"]
        test = read_stack(test_path) if test_path.exists() else None
    else:
        raise UserInputError(
            f"ISBI 2012 membrane data not found in {data_dir}. Put train/image/*.png + train/label/*.png "
            f"(+ test/image/*.png), or {TIFF_FILES['image']} + {TIFF_FILES['label']} (+ {TIFF_FILES['test']}) "
            "there, or point data.data_dir (or ISBI_DATA_DIR) at your copy."
        )
    if images.shape != labels.shape:
        raise UserInputError(f"training images {images.shape} and labels {labels.shape} differ in size.")
    return images, labels, test


def resize_stack(stack: np.ndarray, size: int, labels: str | None = None) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, size, size) float in [0, 1]. Images: bilinear with antialiasing.
    Label maps (``labels``): ``centre`` takes the pixel at each output pixel's centre (as PIL's
    NEAREST; torch's ``nearest`` would take the top-left one, 1.5 px off the image at 512 -> 128);
    ``majority`` averages the pixels each output pixel covers (threshold it at 0.5)."""
    tensor = torch.from_numpy(stack).float().div_(255.0).unsqueeze(1)
    if tensor.shape[-1] == size and tensor.shape[-2] == size:
        return tensor
    if labels == "centre":
        return F.interpolate(tensor, size=(size, size), mode="nearest-exact")
    if labels == "majority":
        return F.interpolate(tensor, size=(size, size), mode="area")
    return F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)


class MembraneDataModule(SplitDataModule):
    """Membrane (label 0) is the foreground class: targets are 1 on membrane, 0 on cells.

    The challenge's test labels were never published, so validation *and* test metrics come from
    ``val_count`` held-out labelled images (a seeded split), unless ``test_count`` > 0 holds out
    that many more labelled images as a test split never used for checkpoint selection; the 30
    test images are served by ``predict_dataloader``. ``border_weights`` adds the U-Net paper's per-pixel weights (``w0``,
    ``sigma`` in full-resolution pixels) for ``loss=weighted_ce``.

    ``label_resize="majority"`` (default) labels an output pixel with the class of most of the
    pixels it covers, the region its antialiased image pixel shows; ``"centre"`` takes one pixel
    (the original study's Keras loader), which disagrees with that region on many thin-membrane pixels.

    ``crop_size`` trains on random crops of the full-resolution (512 px) images instead, and
    validation and test score the whole images in tiles of that side (``image_size`` is then not
    used), as the U-Net paper trains.
    """

    # robustness=standard adds this shift to its suite (the U-Net paper's deformations of EM tissue)
    natural_shifts = ("elastic",)

    in_channels = 1
    out_channels = 1
    task = "binary"
    mean = (0.5,)
    std = (0.25,)
    challenge_metrics = True

    def __init__(
        self,
        data_dir: str,
        image_size: int,
        label_resize: str,
        val_count: int,
        test_count: int,
        split_seed: int,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        augment: Callable | str | None,
        crop_size: int | None,
        border_weights: bool,
        w0: float,
        sigma: float,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["augment"])
        self.settings = settings_of(MembraneDataSchema, self.hparams)
        if image_size < 16:
            raise UserInputError(f"data.image_size={image_size} is too small; use >= 16 (128 as in the original study, 512 full size).")
        check_choice("data.label_resize", label_resize, LABEL_RESIZES)
        if crop_size is not None and crop_size < 16:
            raise UserInputError(f"data.crop_size={crop_size} is too small; use >= 16 (256 as in the U-Net paper's tiles, at most 512).")
        self.data_dir = Path(data_dir)
        self.eval_window = crop_size
        self.augment = resolve(augment, recommended=dihedral())
        self.provides_weights = border_weights
        self.test_images: torch.Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels, test = read_membrane(self.data_dir)
        n, val_count, test_count = len(images), self.settings.val_count, self.settings.test_count
        if val_count < 1 or test_count < 0 or val_count + test_count >= n:
            raise UserInputError(
                f"data.val_count={val_count} and data.test_count={test_count} must leave training images: "
                f"val_count >= 1, test_count >= 0, their sum below {n} (there are {n} labelled images)."
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.settings.split_seed))
        crop = self.settings.crop_size
        size = images.shape[-1] if crop else self.settings.image_size
        if crop and crop > min(images.shape[-2:]):
            raise UserInputError(f"data.crop_size={crop} exceeds the {images.shape[-1]}x{images.shape[-2]} images; use at most {min(images.shape[-2:])}.")
        x = resize_stack(images, size)
        # ties (half membrane) go to the membrane, so thin membranes stay closed
        membrane = (resize_stack(labels, size, labels=self.settings.label_resize) <= 0.5).float()
        held_out = val_count + test_count
        val_ids, test_ids, train_ids = (ids.sort().values for ids in (order[:val_count], order[val_count:held_out], order[held_out:]))
        weights = None
        if self.provides_weights:
            sigma = self.settings.sigma * size / images.shape[-1]  # sigma is given at full resolution
            weights = border_weights(membrane, self.settings.w0, sigma)
        self.splits["train"] = SegmentationTensors(
            x[train_ids], membrane[train_ids], transform=self.augment, weights=None if weights is None else weights[train_ids], crop_size=crop
        )
        for split, ids in (("val", val_ids), ("test", test_ids if test_count else val_ids)):
            self.splits[split] = SegmentationTensors(x[ids], membrane[ids], weights=None if weights is None else weights[ids])
        self.test_images = None if test is None else resize_stack(test, size)

    def predict_dataloader(self) -> DataLoader:
        if self.test_images is None:
            raise UserInputError(f"no challenge test images in {self.data_dir} (test/image/*.png or {TIFF_FILES['test']}).")
        return make_loader(torch.utils.data.TensorDataset(self.test_images), self.hparams, shuffle=False)
