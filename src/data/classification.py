"""Image classification data: eliret shapes (ellipse vs rectangle) and Oxford-IIIT Pet
species/breed, as in-memory tensors served as ``{"image", "label", "index"}``."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from src.config.schemas import check_choice, settings_of
from src.config.schemas.data import PET_TARGETS, EliretClsDataSchema, PetClsDataSchema
from src.data.eliret import EliretDataModule
from src.data.pet import IMAGENET_MEAN, IMAGENET_STD, PetDataModule
from src.data.segmentation_dataset import SplitDataModule, to_unit


class ClassificationTensors(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": to_unit(self.images[index]), "label": self.labels[index], "index": torch.tensor(index)}


class ClassificationDataModule(SplitDataModule):
    task = "classification"


class EliretShapeDataModule(ClassificationDataModule):
    """Ellipse (0) or rectangle (1), from the file index. The defaults are a harder generator
    setting than the segmentation set (more noise, off-centre, more samples), since the original study's
    set is too easy for early exits to matter."""

    in_channels = 1
    num_classes = 2
    mean = (0.5,)
    std = (0.25,)

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
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.settings = settings_of(EliretClsDataSchema, self.hparams)
        self.eliret = EliretDataModule(**self.hparams, augment=None, test_split="test")

    def prepare_data(self) -> None:
        self.eliret.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.eliret.setup(stage)
        n_per_class = self.settings.n_per_class
        for split, dataset in self.eliret.splits.items():
            # file NNNx.png: ellipses first (NNN < n_per_class), then rectangles
            labels = torch.tensor([int(int(name[:-5]) >= n_per_class) for name in self.eliret.input_names[split]])
            self.splits[split] = ClassificationTensors(dataset.images, labels)


class PetClassificationDataModule(ClassificationDataModule):
    """Oxford-IIIT Pet species (cat 0 / dog 1; the original study's binary CNN) or breed (37 classes), on the
    images and splits of ``PetDataModule``."""

    in_channels = 3
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(
        self,
        data_dir: str,
        target: str,
        image_size: int,
        split: str,
        split_seed: int,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        download: bool,
    ) -> None:
        super().__init__()
        check_choice("data.target", target, PET_TARGETS)
        self.save_hyperparameters(logger=False)
        self.settings = settings_of(PetClsDataSchema, self.hparams)
        self.pet = PetDataModule(
            data_dir,
            image_size=image_size,
            classes=3,  # the trimaps are not read; the pet set only lists and splits the images
            split=split,
            split_seed=split_seed,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            download=download,
            augment=None,
        )

    @property
    def num_classes(self) -> int:
        return 2 if self.settings.target == "species" else 37

    def prepare_data(self) -> None:
        self.pet.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.pet.setup(stage)
        for split, dataset in self.pet.splits.items():
            self.splits[split] = ClassificationTensors(dataset.images, self.pet.labels[split][self.settings.target])
