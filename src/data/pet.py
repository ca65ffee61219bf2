"""Oxford-IIIT Pet: 37 breeds of cats and dogs with pixel trimaps (1 = pet, 2 = background,
3 = uncertain border), in the official layout that torchvision's ``OxfordIIITPet`` uses."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from src.config.errors import UserInputError
from src.config.schemas import check_choice, settings_of
from src.config.schemas.data import PET_SPLITS, PetDataSchema
from src.data.array_cache import cached_arrays
from src.data.augment import JointAugment, resolve
from src.data.resizing import resize_image, resize_mask
from src.data.segmentation_dataset import SegmentationTensors, SplitDataModule
from src.storage.image_files import read_raw_mask, read_rgb

log = logging.getLogger(__name__)

# trimap value -> class, for 3 classes (background 0, pet 1, border 2) and for pet vs rest
# (binary: the uncertain border is folded into the pet, so the target covers the whole animal)
TRIMAP_TO_CLASS = {3: np.array([0, 1, 0, 2]), 2: np.array([0, 1, 0, 1])}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# version of the resized-array cache: 2 = labels resized with nearest-exact (pixel centres)
CACHE_FORMAT = 2


def read_split_list(path: Path) -> list[tuple[str, int, int]]:
    """(image id, breed 0..36, species 0 = cat / 1 = dog) from trainval.txt / test.txt."""
    if not path.exists():
        raise UserInputError(f"{path} not found: the Pet annotations are incomplete (see docs/data.md, Oxford-IIIT Pet).")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or not all(f.isdigit() for f in fields[1:]):
            raise UserInputError(f"{path}:{number}: expected 'name class species breed' (three numbers after the name), got {line!r}. Fix that line.")
        rows.append((fields[0], int(fields[1]) - 1, int(fields[2]) - 1))
    return rows


def load_pair(images_dir: Path, trimaps_dir: Path, image_id: str, size: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Resized (3, size, size) uint8 image and (size, size) uint8 class map for one image id."""
    image_path, trimap_path = images_dir / f"{image_id}.jpg", trimaps_dir / f"{image_id}.png"
    for path in (image_path, trimap_path):
        if not path.exists():
            raise UserInputError(f"{path} is listed in the split files but missing; restore it or remove its line.")
    image, trimap = read_rgb(image_path), read_raw_mask(trimap_path)
    values = set(np.unique(trimap).tolist())
    if not values <= {1, 2, 3}:
        raise UserInputError(f"trimap {trimap_path} has values {sorted(values)}; a Pet trimap holds only 1, 2, 3.")
    if trimap.shape != image.shape[:2]:
        raise UserInputError(f"trimap {trimap_path.name} is {trimap.shape[1]}x{trimap.shape[0]} but its image is {image.shape[1]}x{image.shape[0]}.")
    return resize_image(image.transpose(2, 0, 1), size), resize_mask(TRIMAP_TO_CLASS[classes][trimap].astype(np.uint8), size)


def as_images(pixels: np.ndarray) -> torch.Tensor:
    """(N, 3, H, W) uint8 pixels as the data set keeps them: uint8, a quarter of float32."""
    return torch.from_numpy(np.ascontiguousarray(pixels))


def pet_folder(data_dir: Path) -> Path:
    """The ``oxford-iiit-pet`` folder, given it or its parent (torchvision's ``root``)."""
    if data_dir.name != "oxford-iiit-pet" and not (data_dir / "annotations").is_dir():
        return data_dir / "oxford-iiit-pet"
    return data_dir


class PetDataModule(SplitDataModule):
    """Segmentation of the pet (3 classes, or ``classes=2``: pet vs rest), with the breed and
    species of every image exposed for classification (``labels[split]``).

    ``data_dir`` is the ``oxford-iiit-pet`` folder, or its parent (``images/``, ``annotations/trimaps/``,
    ``annotations/trainval.txt``, ``annotations/test.txt``); ``download=true`` fetches it with
    torchvision. Splits: ``random`` (80/10/10 of all images by ``split_seed``, the original study) or
    ``official`` (trainval -> train + 10% val, test list -> test). Decoded, resized images are
    cached in ``<data_dir>/cache/`` (keyed by image size, classes and file list) after the first
    pass; when that folder is not writable, only in memory.
    """

    in_channels = 3
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(
        self,
        data_dir: str,
        image_size: int,
        classes: int,
        split: str,
        split_seed: int,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        download: bool,
        augment: Callable | str | None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["augment"])
        self.settings = settings_of(PetDataSchema, self.hparams)
        if classes not in TRIMAP_TO_CLASS:
            raise UserInputError(f"data.classes={classes} must be 3 (background, pet, border) or 2 (pet vs rest).")
        check_choice("data.split", split, PET_SPLITS)
        self.data_dir = pet_folder(Path(data_dir))
        self.augment = resolve(augment, recommended=JointAugment(v2.RandomHorizontalFlip(), reflect_margin=0.0))
        self.labels: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def task(self) -> str:
        return "multiclass" if self.settings.classes == 3 else "binary"

    @property
    def out_channels(self) -> int:
        return 3 if self.settings.classes == 3 else 1

    def prepare_data(self) -> None:
        if self.settings.download and not (self.data_dir / "annotations" / "trainval.txt").exists():
            from torchvision.datasets import OxfordIIITPet

            OxfordIIITPet(self.data_dir.parent, split="trainval", target_types="segmentation", download=True)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        annotations = self.data_dir / "annotations"
        if not annotations.is_dir() or not (self.data_dir / "images").is_dir():
            raise UserInputError(
                f"Oxford-IIIT Pet not found in {self.data_dir}. Place images/*.jpg, annotations/trimaps/*.png, "
                "annotations/trainval.txt and annotations/test.txt there (the official archives images.tar.gz and "
                "annotations.tar.gz unpacked), or set data.download=true on a machine with internet access."
            )
        trainval = read_split_list(annotations / "trainval.txt")
        test = read_split_list(annotations / "test.txt")
        rows = trainval + test
        images, masks = self._load(rows)
        breeds = torch.tensor([r[1] for r in rows])
        species = torch.tensor([r[2] for r in rows])
        for split, ids in self._split_ids(len(trainval), len(test)).items():
            # uint8 in memory, converted per item: Pet at 256 px fits with the reduction's copy
            target = torch.from_numpy(masks[ids])
            if self.settings.classes == 2:
                target = target.unsqueeze(1)
            self.splits[split] = SegmentationTensors(
                as_images(images[ids]),
                target,
                transform=self.augment if split == "train" else None,
                target_dtype=torch.float32 if self.settings.classes == 2 else torch.long,
            )
            self.labels[split] = {"breed": breeds[ids], "species": species[ids]}

    def _split_ids(self, n_trainval: int, n_test: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.settings.split_seed)
        if self.settings.split == "official":
            order = rng.permutation(n_trainval)
            n_val = max(1, n_trainval // 10)
            return {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val]), "test": np.arange(n_trainval, n_trainval + n_test)}
        n = n_trainval + n_test
        order = rng.permutation(n)
        n_val = n_test_split = max(1, n // 10)
        return {
            "train": np.sort(order[n_val + n_test_split :]),
            "val": np.sort(order[:n_val]),
            "test": np.sort(order[n_val : n_val + n_test_split]),
        }

    def _load(self, rows: list[tuple[str, int, int]]) -> tuple[np.ndarray, np.ndarray]:
        size, classes = self.settings.image_size, self.settings.classes
        # CACHE_FORMAT changes whenever resizing changes, so older caches are not reused
        key = hashlib.sha1(f"{CACHE_FORMAT}|{size}|{classes}|{'|'.join(r[0] for r in rows)}".encode()).hexdigest()[:16]
        cache = self.data_dir / "cache" / f"pet_{size}px_{classes}cls_{key}.npz"

        def decoded() -> dict[str, np.ndarray]:
            images_dir, trimaps_dir = self.data_dir / "images", self.data_dir / "annotations" / "trimaps"
            # filled in place: a list of per-image arrays interleaved with each decode's temporaries
            # fragmented the heap (peak RSS 4.7 GB for a Pet-sized set at 128 px, `make bench`)
            images = np.empty((len(rows), 3, size, size), np.uint8)
            masks = np.empty((len(rows), size, size), np.uint8)
            for i, row in enumerate(rows):
                images[i], masks[i] = load_pair(images_dir, trimaps_dir, row[0], size, classes)
            return {"images": images, "masks": masks}

        arrays = cached_arrays(cache, decoded, "resized Pet images")
        return arrays["images"], arrays["masks"]
