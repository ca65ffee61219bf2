"""Your own data: a folder of images and masks (``data=folder``), any size, binary or multi-class.

Layout: ``<data_dir>/images/`` and ``<data_dir>/masks/``, paired by file stem, and optionally
``train.txt``, ``val.txt``, ``test.txt`` naming the splits. See docs/own_data.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from src.config.errors import UserInputError
from src.config.schemas import settings_of
from src.config.schemas.data import FolderDataSchema
from src.data.array_cache import cached_arrays
from src.data.augment import dihedral, resolve
from src.data.folder_files import SPLITS, Pair
from src.data.folder_scan import Scan, scan_folder
from src.data.folder_statistics import channel_statistics
from src.data.mask_decoding import MaskDecoding
from src.data.resizing import resize_image, resize_mask
from src.data.segmentation_dataset import SegmentationTensors, SplitDataModule, make_loader, random_crop, to_unit
from src.seeding import item_seed
from src.storage.image_files import read_image, read_raw_mask

log = logging.getLogger(__name__)

# version of the decoded-array cache: change it whenever decoding changes
CACHE_FORMAT = 1
# canvas sides round up to this, so a net that halves the resolution 5 times takes a whole canvas
CANVAS_MULTIPLE = 32


class FolderDataModule(SplitDataModule):
    """Images and masks from a folder, binary (``classes=2``, one output channel) or multi-class.

    Args:
        data_dir: holds ``images/`` (PNG, JPEG, TIFF) and ``masks/`` (PNG, TIFF), paired by stem.
        classes: 2 is binary (one output channel), N > 2 multi-class (mask values 0..N-1 or
            a palette PNG's indices).
        foreground: binary masks' foreground value (None: 1 for 0/1 masks, 255 for 0/255).
        mask_values: the stored value of each class, in class order, for other encodings.
        ignore_index: the mask value of unlabelled pixels, skipped by the losses and metrics.
        channels: 1 (gray) or 3 (RGB); None detects it from the files (RGB if any file is colour).
        image_size: resize every image to this square side; or
        crop_size: train on random square crops at native resolution and evaluate whole images
            in tiles of this side (the U-Net paper's way); images may then differ in size.
            Neither: every image must have the same size, used as is.
        split: train/val/test fractions when there are no split lists; split_seed shuffles.
        intensity_max: the value that maps to white in 16-bit or float images (None: 65535, 1.0).
        memory_limit_mb: decoded sets up to this size (uint8) are held in memory; larger ones
            decode each image from disk when it is served (the reduction needs them in memory).
        cache_dir: the decoded arrays are cached there after the first pass (None: decoded on
            every start); never inside ``data_dir`` unless pointed there.
    """

    natural_shifts = ()

    def __init__(
        self,
        data_dir: str,
        classes: int,
        foreground: int | None,
        mask_values: Sequence[int] | None,
        ignore_index: int | None,
        channels: int | None,
        image_size: int | None,
        crop_size: int | None,
        split: Sequence[float],
        split_seed: int,
        intensity_max: float | None,
        memory_limit_mb: float,
        cache_dir: str | None,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        augment: Callable | str | None,
    ) -> None:
        super().__init__()
        mask_values = None if mask_values is None else [int(v) for v in mask_values]
        split = [float(f) for f in split]
        self.save_hyperparameters(logger=False, ignore=["augment"])
        self.settings = settings_of(FolderDataSchema, self.hparams)
        self.decoding = MaskDecoding(classes, foreground, mask_values, ignore_index)
        if channels not in (None, 1, 3):
            raise UserInputError(f"data.channels={channels} must be 1 (gray), 3 (RGB) or null (detected from the files).")
        if image_size is not None and crop_size is not None:
            raise UserInputError("set data.image_size (resize) or data.crop_size (native resolution, random crops), not both.")
        for name, side in (("image_size", image_size), ("crop_size", crop_size)):
            if side is not None and side < 16:
                raise UserInputError(f"data.{name}={side} is too small; use >= 16 pixels.")
        if len(split) != 3 or min(split) < 0 or split[0] <= 0 or abs(sum(split) - 1) > 1e-6:
            raise UserInputError(f"data.split={split} must be three fractions (train, val, test) >= 0 that sum to 1, with train > 0.")
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise UserInputError(f"data.data_dir={self.data_dir} is not a folder; point it at the folder holding images/ and masks/.")
        self.augment = resolve(augment, recommended=dihedral())
        self.ignore_index = ignore_index
        self.eval_window = crop_size
        self.streamed = False
        self._statistics: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    # ---- what the model is built from -------------------------------------------------------
    @property
    def task(self) -> str:
        return "binary" if self.settings.classes == 2 else "multiclass"

    @property
    def out_channels(self) -> int:
        return 1 if self.settings.classes == 2 else self.settings.classes

    @property
    def in_channels(self) -> int:
        return self.scan.channels

    @property
    def mean(self) -> tuple[float, ...]:
        return self.statistics[0]

    @property
    def std(self) -> tuple[float, ...]:
        return self.statistics[1]

    @cached_property
    def statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the first training images, which the model normalises by
        (inside itself: its checkpoint takes raw images)."""
        return channel_statistics([pair.image for pair in self.scan.splits["train"]], self.scan.channels, self.settings.intensity_max)

    @property
    def example_size(self) -> tuple[int, int] | None:
        """The training size (``crop_size`` or ``image_size``), else the training images' own
        (height, width), one for all (other sizes are refused), read from the headers: the model
        summary counts the FLOPs of one such image."""
        return super().example_size or self.scan.sizes["train"][0]

    # ---- reading -----------------------------------------------------------------------
    @cached_property
    def scan(self) -> Scan:
        """Pairs, splits, channels and sizes from the file headers (:func:`scan_folder`)."""
        h = self.settings
        return scan_folder(self.data_dir, h.channels, h.image_size, h.crop_size, h.split, h.split_seed)

    def _arrays(self, split: str, foreground: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """A split's images (N, C, H, W) and class maps (N, H, W) as uint8, decoded straight
        into one array (no per-image copies to stack), resized if asked; images of different
        sizes on one canvas, with their (height, width) rows, else None."""
        pairs, side = self.scan.splits[split], self.settings.image_size
        shapes = [(side, side)] * len(pairs) if side else self.scan.sizes[split]
        mixed = len(set(shapes)) > 1
        height, width = (-(-max(extent) // CANVAS_MULTIPLE) * CANVAS_MULTIPLE for extent in zip(*shapes)) if mixed else shapes[0]
        images = np.zeros((len(pairs), self.scan.channels, height, width), np.uint8)
        masks = np.zeros((len(pairs), height, width), np.uint8)
        for i, pair in enumerate(pairs):
            image, mask = self.decode_pair(pair, foreground)
            images[i, :, : mask.shape[0], : mask.shape[1]] = image
            masks[i, : mask.shape[0], : mask.shape[1]] = mask
        return images, masks, np.array(shapes) if mixed else None

    def _cached_arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`_arrays` through ``cache_dir``, keyed by the folder, every file's name, size
        and modification time and the decoding settings (as Pet caches its arrays); without a
        cache dir, or where it is not writable, in memory only."""
        h = self.settings
        if h.cache_dir is None:
            return self._arrays(split, self.foreground)
        files = "|".join(
            f"{p.image.name}:{p.image.stat().st_size}:{p.image.stat().st_mtime_ns}:{p.mask.name}:{p.mask.stat().st_mtime_ns}" for p in self.scan.splits[split]
        )
        # one cache dir serves every folder: the folder's own path is part of the key
        settings = f"{CACHE_FORMAT}|{self.data_dir.resolve()}|{self.scan.channels}|{h.image_size}|{h.intensity_max}|{self.decoding}|{files}"
        cache = Path(h.cache_dir) / f"folder_{split}_{hashlib.sha1(settings.encode()).hexdigest()[:16]}.npz"

        def decoded() -> dict[str, np.ndarray]:
            images, masks, sizes = self._arrays(split, self.foreground)
            return {"images": images, "masks": masks, **({} if sizes is None else {"sizes": sizes})}

        arrays = cached_arrays(cache, decoded, f"the decoded {split} split")
        return arrays["images"], arrays["masks"], arrays.get("sizes")

    def decode_pair(self, pair: Pair, foreground: int | None) -> tuple[np.ndarray, np.ndarray]:
        """One pair as served: the image (C, H, W) and class map (H, W), uint8, resized if asked."""
        image = read_image(pair.image, self.scan.channels, self.settings.intensity_max)
        mask = self.decoding.decode(read_raw_mask(pair.mask), pair.mask, foreground)
        side = self.settings.image_size
        return (resize_image(image, side), resize_mask(mask, side)) if side else (image, mask)

    @cached_property
    def foreground(self) -> int | None:
        """The stored foreground value of binary masks (None for other encodings)."""
        if self.settings.classes != 2 or self.settings.mask_values is not None:
            return None
        if self.settings.foreground is not None:
            return self.settings.foreground
        values = {
            pair.mask: set(np.unique(read_raw_mask(pair.mask)).tolist()) - {self.ignore_index} for members in self.scan.splits.values() for pair in members
        }
        return self.decoding.binary_foreground(values)

    # ---- splits ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        scan = self.scan
        limit = self.settings.memory_limit_mb * 2**20
        self.streamed = scan.stored_bytes > limit
        for split in SPLITS:
            transform = self.augment if split == "train" else None
            crop = self.settings.crop_size if split == "train" else None
            if split == "test" and scan.splits["test"] is scan.splits["val"]:
                self.splits["test"] = self.splits["val"]
            elif self.streamed:
                self.splits[split] = StreamedPairs(self, scan.splits[split], self.foreground, transform, crop)
            else:
                self.splits[split] = self._tensors(*self._cached_arrays(split), transform, crop)
        heights, widths = zip(*(size for split in scan.sizes.values() for size in split))
        log.info(
            "data=folder %s: %d train / %d val / %d test pairs, %s%s, %d classes, %s, %s",
            self.data_dir,
            *(len(scan.splits[s]) for s in SPLITS),
            "RGB" if scan.channels == 3 else "gray",
            f" ({scan.converted} files converted to {'RGB' if scan.channels == 3 else 'gray'})" if scan.converted else "",
            self.settings.classes,
            f"widths {min(widths)}-{max(widths)} x heights {min(heights)}-{max(heights)} px"
            + (f", resized to {self.settings.image_size}" if self.settings.image_size else "")
            + (f", training on {self.settings.crop_size} px crops" if self.settings.crop_size else ""),
            f"streamed from disk ({scan.stored_bytes / 2**20:.0f} MB > data.memory_limit_mb={self.settings.memory_limit_mb:g})"
            if self.streamed
            else f"held in memory ({scan.stored_bytes / 2**20:.1f} MB uint8)",
        )

    def _tensors(self, images: np.ndarray, masks: np.ndarray, sizes: np.ndarray | None, transform: Callable | None, crop: int | None) -> SegmentationTensors:
        binary = self.settings.classes == 2
        targets = torch.from_numpy(masks)
        return SegmentationTensors(
            torch.from_numpy(images),
            targets.unsqueeze(1) if binary else targets,
            transform=transform,
            target_dtype=torch.float32 if binary else torch.long,
            sizes=None if sizes is None else torch.from_numpy(sizes),
            crop_size=crop,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self.splits[split]
        mixed = len(set(self.scan.sizes[split])) > 1 and self.settings.image_size is None
        # whole images of different sizes do not stack into a batch: one at a time
        hparams = {**self.hparams, "batch_size": 1} if mixed else self.hparams
        return make_loader(dataset, hparams, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


class StreamedPairs(Dataset):
    """A split decoded from disk item by item (sets above ``data.memory_limit_mb``), served like
    :class:`SegmentationTensors`: resized or cropped, then augmented, seeded per (epoch, item)."""

    def __init__(self, datamodule: FolderDataModule, pairs: list[Pair], foreground: int | None, transform: Callable | None, crop: int | None) -> None:
        self.pairs, self.foreground, self.transform, self.crop = pairs, foreground, transform, crop
        self.decode_pair = datamodule.decode_pair
        self.binary = datamodule.settings.classes == 2
        self.epoch_seed = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch_seed(self, seed: int) -> None:
        self.epoch_seed.fill_(seed)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, mask = self.decode_pair(self.pairs[index], self.foreground)
        pixels = to_unit(torch.from_numpy(image))
        target = torch.from_numpy(mask)
        target = target[None].float() if self.binary else target.long()
        if self.transform is not None or self.crop is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(item_seed(int(self.epoch_seed), index))
                if self.crop is not None:
                    pixels, (target,) = random_crop(pixels, [target], tuple(mask.shape), self.crop)
                if self.transform is not None:
                    pixels, target = self.transform(pixels, target)
        return {"image": pixels, "mask": target, "index": torch.tensor(index)}
