"""Oxford-IIIT Pet on a small generated fixture in exactly the official layout."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.config.errors import UserInputError
from src.config.schemas import with_defaults
from src.data.pet import PetDataModule
from src.train import train
from tests.helpers.pet_sets import make_pet


def test_parsing_agrees_with_torchvision_oxford_iiit_pet(tmp_path: Path) -> None:
    from torchvision.datasets import OxfordIIITPet

    base = make_pet(tmp_path, size=(32, 32))
    dm = with_defaults(PetDataModule, str(base), image_size=32, split="official", augment=None)
    dm.setup()
    tv = OxfordIIITPet(tmp_path, split="test", target_types=["segmentation", "category", "binary-category"])
    ours = dm.splits["test"]
    for i in range(len(tv)):
        image, (trimap, category, species) = tv[i]
        item = ours[i]
        assert torch.equal((item["image"] * 255).round().to(torch.uint8), torch.from_numpy(np.asarray(image)).permute(2, 0, 1))
        expected = np.array([0, 1, 0, 2])[np.asarray(trimap)]
        assert torch.equal(item["mask"], torch.from_numpy(expected).long())
        assert dm.labels["test"]["breed"][i].item() == category
        assert dm.labels["test"]["species"][i].item() == species


def test_species_follow_the_file_name_case(tmp_path: Path) -> None:
    dm = with_defaults(PetDataModule, str(make_pet(tmp_path)), image_size=32, augment=None)
    dm.setup()
    for split in ("train", "val", "test"):
        assert len(dm.labels[split]["species"]) == len(dm.splits[split])
    assert set(torch.cat([dm.labels[s]["species"] for s in dm.labels]).tolist()) == {0, 1}


def test_random_split_is_80_10_10_and_seeded(tmp_path: Path) -> None:
    base = make_pet(tmp_path, per_breed=10)
    dm = with_defaults(PetDataModule, str(base), image_size=32, augment=None)
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 32, "val": 4, "test": 4}
    again = with_defaults(PetDataModule, str(base), image_size=32, augment=None)
    again.setup()
    assert torch.equal(dm.splits["val"].images, again.splits["val"].images)


def test_binary_folds_the_border_into_the_pet(tmp_path: Path) -> None:
    dm = with_defaults(PetDataModule, str(make_pet(tmp_path)), image_size=32, classes=2, augment=None)
    dm.setup()
    mask = dm.splits["train"].masks
    assert dm.task == "binary" and dm.out_channels == 1
    assert mask.shape[1] == 1 and set(mask.unique().tolist()) == {0.0, 1.0}


def test_resized_tensors_are_cached_per_image_size(tmp_path: Path) -> None:
    base = make_pet(tmp_path, varied=True)
    first = with_defaults(PetDataModule, str(base), image_size=32, augment=None)
    first.setup()
    (cached,) = (base / "cache").glob("*.npz")
    (base / "images" / "Abyssinian_1.jpg").unlink()  # a cache hit no longer reads the JPEGs
    second = with_defaults(PetDataModule, str(base), image_size=32, augment=None)
    second.setup()
    assert torch.equal(first.splits["train"].images, second.splits["train"].images)
    with pytest.raises(UserInputError, match="Abyssinian_1.jpg is listed in the split files but missing"):
        with_defaults(PetDataModule, str(base), image_size=24, augment=None).setup()  # new size: cache miss


def test_unexpected_trimap_values_are_named(tmp_path: Path) -> None:
    base = make_pet(tmp_path)
    Image.fromarray(np.full((40, 48), 7, np.uint8)).save(base / "annotations" / "trimaps" / "pug_2.png")
    with pytest.raises(UserInputError, match=r"pug_2\.png has values \[7\]"):
        with_defaults(PetDataModule, str(base), image_size=32, augment=None).setup()


def test_missing_data_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="annotations/trainval.txt"):
        with_defaults(PetDataModule, str(tmp_path / "oxford-iiit-pet"), augment=None).setup()


@pytest.mark.slow
@pytest.mark.parametrize("classes", [3, 2])
def test_pet_trains_end_to_end_with_reduction(make_cfg, tmp_path: Path, classes: int) -> None:
    base = make_pet(tmp_path / "data")
    cfg = make_cfg(
        "train",
        "data=pet",
        f"data.data_dir={base}",
        "data.image_size=32",
        f"data.classes={classes}",
        "trainer.max_epochs=2",
        "reduction.rounds=2",
        "data.batch_size=4",
    )
    metrics = train(cfg)
    assert {"test/miou", "test/mdice", "test/acc"} <= set(metrics)
    assert (tmp_path / "reduction" / "round_02" / "masks.npz").exists()
