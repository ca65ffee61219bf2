"""An in-memory segmentation dataset whose images can be replaced between fits."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from src.data.contract import ExperimentData
from src.seeding import epoch_seed, item_seed


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1]: uint8 images are scaled (a new tensor), float ones returned."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images


def like_stored(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[0, 1] float images back in a data set's storage type (uint8: rounded to 1/255)."""
    return images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)


def random_crop(image: torch.Tensor, maps: list[torch.Tensor], size: tuple[int, int], side: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A ``side`` x ``side`` window at a random place (torch's generator) inside the top-left
    ``size`` (height, width) of ``image`` and of every map."""
    top, left = (int(torch.randint(extent - side + 1, ())) for extent in size)
    rows, cols = slice(top, top + side), slice(left, left + side)
    return image[..., rows, cols], [m[..., rows, cols] for m in maps]


class SegmentationTensors(Dataset):
    """Images (N, C, H, W), float in [0, 1] or uint8 (a quarter of the memory: a Pet-sized set
    at 256 px is 1.4 GB instead of 5.8 GB; converted per item), and targets (N, 1, H, W) float
    or (N, H, W) long, or any type with ``target_dtype`` given (converted per item).

    Items are dicts ``{"image", "mask", "index"}`` (+ ``"weight"``, per-pixel loss weights
    (N, 1, H, W), when given); ``index`` is the sample's position in this dataset, so results
    computed on shuffled or sharded batches can be put back in order. ``transform`` (joint
    augmentation) runs per item, after any replacement of the images, and moves the weights with
    the mask.

    Images of different sizes share one canvas: image i fills the top-left ``sizes[i]`` (height,
    width) of its (H, W) slot, and only those pixels are served and reduced (``valid_pixels``).
    ``crop_size`` serves a random square crop from inside each image (training at native
    resolution); without it, each item is the whole image at its own size.
    """

    def __init__(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        transform: Callable[..., tuple[torch.Tensor, ...]] | None = None,
        weights: torch.Tensor | None = None,
        target_dtype: torch.dtype | None = None,
        sizes: torch.Tensor | None = None,
        crop_size: int | None = None,
    ) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if len(images) != len(masks) or images.shape[-2:] != masks.shape[-2:]:
            raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not match")
        self.images = images
        self.masks = masks
        self.transform = transform
        self.weights = weights
        self.target_dtype = target_dtype
        self.sizes, self.crop_size = sizes, crop_size
        # shared memory: loader workers (forked once, persistent) see each new epoch's seed
        self.epoch_seed = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        mask = self.masks[index] if self.target_dtype is None else self.masks[index].to(self.target_dtype)
        maps = [mask] + ([] if self.weights is None else [self.weights[index]])
        image = self.images[index]
        if self.sizes is not None and self.crop_size is None:
            height, width = self.sizes[index].tolist()
            image, maps = image[..., :height, :width], [m[..., :height, :width] for m in maps]
        image = to_unit(image)
        if self.transform is not None or self.crop_size is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(item_seed(int(self.epoch_seed), index))
                if self.crop_size is not None:
                    image, maps = self._random_crop(index, image, maps)
                if self.transform is not None:
                    image, *maps = self.transform(image, *maps)
        item = {"image": image, "mask": maps[0], "index": torch.tensor(index)}
        if self.weights is not None:
            item["weight"] = maps[1]
        return item

    def _random_crop(self, index: int, image: torch.Tensor, maps: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return random_crop(image, maps, self.image_size(index), self.crop_size)

    def image_size(self, index: int) -> tuple[int, int]:
        """(height, width) of image ``index`` (its own size, not the canvas's)."""
        if self.sizes is None:
            return tuple(self.images.shape[-2:])
        height, width = self.sizes[index].tolist()
        return height, width

    def valid_pixels(self) -> torch.Tensor:
        """(N, H, W) bool: the canvas pixels that belong to each image."""
        n, _, height, width = self.images.shape
        if self.sizes is None:
            return torch.ones(n, height, width, dtype=torch.bool)
        rows, cols = torch.arange(height).view(1, -1, 1), torch.arange(width).view(1, 1, -1)
        return (rows < self.sizes[:, 0].view(-1, 1, 1)) & (cols < self.sizes[:, 1].view(-1, 1, 1))

    def set_epoch_seed(self, seed: int) -> None:
        self.epoch_seed.fill_(seed)

    def replace_images(self, images: torch.Tensor) -> None:
        """Swap in new images of the same shape and type (e.g. a reduced training set)."""
        if images.shape != self.images.shape or images.dtype != self.images.dtype:
            raise ValueError(f"replacement images {tuple(images.shape)} {images.dtype} must match {tuple(self.images.shape)} {self.images.dtype}")
        self.images = images

    def replace_masks(self, masks: torch.Tensor) -> None:
        """Swap in new targets of the same shape and type (removed pixels made unlabelled)."""
        if masks.shape != self.masks.shape or masks.dtype != self.masks.dtype:
            raise ValueError(f"replacement targets {tuple(masks.shape)} {masks.dtype} must match {tuple(self.masks.shape)} {self.masks.dtype}")
        self.masks = masks


class EpochShuffle(RandomSampler):
    """A new order every epoch, drawn from (run seed, epoch) alone, like DistributedSampler: the
    order of an epoch does not depend on when its iterator is made, so a resumed run sees the
    uninterrupted run's order. Lightning calls ``set_epoch``; under DDP it uses DistributedSampler
    (seeded the same way) instead."""

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        seed = epoch_seed(int(os.environ.get("PL_GLOBAL_SEED", 0)), self.epoch)
        yield from torch.randperm(len(self.data_source), generator=torch.Generator().manual_seed(seed)).tolist()


def make_loader(dataset: Dataset, hparams: Mapping[str, Any], shuffle: bool) -> DataLoader:
    """A DataLoader with a data module's ``batch_size``, ``num_workers`` and ``pin_memory``."""
    return DataLoader(
        dataset,
        batch_size=hparams["batch_size"],
        sampler=EpochShuffle(dataset) if shuffle else None,
        num_workers=hparams["num_workers"],
        pin_memory=hparams["pin_memory"],
        persistent_workers=hparams["num_workers"] > 0,
    )


class SplitDataModule(ExperimentData):
    """A data module whose ``setup`` fills ``self.splits`` ({"train", "val", "test"} datasets);
    serves them with the module's ``batch_size``, ``num_workers`` and ``pin_memory``. Subclasses
    state ``task``, ``in_channels``, ``mean``, ``std`` and ``out_channels`` or ``num_classes``
    (:class:`src.data.contract.ExperimentData`)."""

    def __init__(self) -> None:
        super().__init__()
        self.splits: dict[str, Dataset] = {}

    @property
    def example_size(self) -> tuple[int, int] | None:
        """(height, width) of a training image: ``crop_size`` or ``image_size`` squared; None
        where neither is set."""
        size = self.hparams.get("crop_size") or self.hparams.get("image_size")
        return (size, size) if isinstance(size, int) else None

    def split_dataloader(self, name: str) -> DataLoader:
        """The loader of extra test split ``name`` (one of :attr:`test_splits`)."""
        return make_loader(self.splits[f"test_{name}"], self.hparams, shuffle=False)

    @property
    def train_set(self) -> Dataset:
        """The training split, which the saliency reduction replaces in place."""
        return self.splits["train"]

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.splits["train"], self.hparams, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return make_loader(self.splits["val"], self.hparams, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return make_loader(self.splits["test"], self.hparams, shuffle=False)
