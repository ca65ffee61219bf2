import shutil
from pathlib import Path

import pytest
import torch

from src.config.errors import UserInputError
from src.data.eliret_generator import EliretSpec, generate
from tests.helpers.small_sets import setup_dm


@pytest.fixture
def eliret_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "eliret"
    generate(EliretSpec(n_per_class=8), folder)
    return folder


def test_splits_scaled_to_unit_range(eliret_copy: Path) -> None:
    dm = setup_dm(eliret_copy)
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sizes == {"train": 8, "val": 4, "test": 4}
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["mask"].shape == (4, 1, 32, 32)
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert set(batch["mask"].unique().tolist()) == {0.0, 1.0}
    assert batch["index"].dtype == torch.long


def test_generates_into_an_empty_dir(tmp_path: Path) -> None:
    dm = setup_dm(tmp_path / "fresh")
    assert (tmp_path / "fresh" / "treino.csv").exists() and len(dm.splits["test"]) == 4


def test_corrupt_png_is_named(eliret_copy: Path) -> None:
    (eliret_copy / "001x.png").write_bytes(b"not a png")
    with pytest.raises(UserInputError, match=r"001x\.png.*corrupt"):
        setup_dm(eliret_copy)


def test_image_mask_size_mismatch_is_named(eliret_copy: Path) -> None:
    shutil.copy(eliret_copy / "maior1y.png", eliret_copy / "002y.png")
    with pytest.raises(UserInputError, match=r"002x\.png is 32x32 but its mask 002y\.png is 88x72"):
        setup_dm(eliret_copy)


def test_csv_line_naming_a_missing_file(eliret_copy: Path) -> None:
    (eliret_copy / "003y.png").unlink()
    with pytest.raises(UserInputError, match=r"treino\.csv:4 names 003y\.png, which does not exist"):
        setup_dm(eliret_copy)


def test_malformed_csv_line(eliret_copy: Path) -> None:
    (eliret_copy / "valida.csv").write_text("004x.png 004y.png\n")
    with pytest.raises(UserInputError, match=r"valida\.csv:1: expected 'input\.png;target\.png'"):
        setup_dm(eliret_copy)


def test_missing_dir_without_generation(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="not found"):
        setup_dm(tmp_path / "nowhere", generate=False)


def test_setup_twice_keeps_a_replaced_training_set(eliret_copy: Path) -> None:
    dm = setup_dm(eliret_copy)
    zeros = torch.zeros_like(dm.train_set.images)
    dm.train_set.replace_images(zeros)
    dm.setup("fit")  # Lightning calls setup again on every fit
    assert torch.equal(dm.train_set.images, zeros)
    with pytest.raises(ValueError, match="must match"):
        dm.train_set.replace_images(zeros[:2])
