"""Input files as users have them: truncated, the wrong colour depth, 16-bit, odd mask values,
sloppy list files, paths with spaces and accents. Each is converted (and documented) or refused
with the file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from src.config.errors import UserInputError
from src.config.schemas import with_defaults
from src.data.eliret_generator import EliretSpec, generate
from src.data.pet import PetDataModule
from src.data.png_pairs import read_split_csv
from src.storage.image_files import header, read_gray, read_image, read_label, read_raw_mask, read_rgb, read_stack
from src.train import train
from tests.helpers.pet_sets import make_pet
from tests.helpers.small_sets import setup_dm


@pytest.fixture
def eliret(tmp_path):
    folder = tmp_path / "eliret"
    generate(EliretSpec(n_per_class=8), folder)
    return folder


def _gray(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def test_a_truncated_png_is_refused_naming_it(eliret) -> None:
    data = (eliret / "005x.png").read_bytes()
    (eliret / "005x.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match=r"005x\.png.*corrupt"):
        setup_dm(eliret)


def test_rgb_where_gray_is_expected_becomes_its_luminance(eliret) -> None:
    gray = _gray(eliret / "006x.png")
    Image.fromarray(np.stack([gray] * 3, -1)).save(eliret / "006x.png")
    assert np.array_equal(read_gray(eliret / "006x.png"), gray)
    setup_dm(eliret)


def test_16_bit_images_are_scaled_to_8_bits_not_clipped(eliret) -> None:
    gray = _gray(eliret / "007x.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(eliret / "007x.png")
    assert Image.open(eliret / "007x.png").mode.startswith("I")
    assert np.array_equal(read_gray(eliret / "007x.png"), gray)


def test_masks_with_values_other_than_0_and_255_are_refused_naming_the_file(eliret) -> None:
    mask = _gray(eliret / "008y.png").copy()
    mask[0, :4] = 128  # as JPEG compression leaves it
    Image.fromarray(mask).save(eliret / "008y.png")
    with pytest.raises(UserInputError, match=r"mask .*008y\.png holds values 0, 128, 255.*Threshold it"):
        setup_dm(eliret)


def test_0_1_masks_are_read_as_0_255(eliret) -> None:
    mask = _gray(eliret / "009y.png")
    Image.fromarray((mask > 127).astype(np.uint8)).save(eliret / "009y.png")
    dm = setup_dm(eliret)
    assert set(dm.splits["train"].masks.unique().tolist()) <= {0.0, 1.0}


def test_blank_lines_in_a_split_csv_are_skipped(eliret) -> None:
    lines = (eliret / "treino.csv").read_text().splitlines()
    (eliret / "treino.csv").write_text("\n\n".join(lines) + "\n\n  \n")
    assert len(setup_dm(eliret).splits["train"]) == len(lines)


def test_a_pet_list_line_with_a_word_where_a_number_belongs_is_named(tmp_path) -> None:
    base = make_pet(tmp_path, per_breed=2)
    with (base / "annotations" / "test.txt").open("a") as file:
        file.write("\nBengal_9 six 1 9\n")
    with pytest.raises(UserInputError, match=r"test\.txt:\d+: expected 'name class species breed' .*'Bengal_9 six 1 9'"):
        with_defaults(PetDataModule, str(base), image_size=32).setup()


def test_a_truncated_pet_jpeg_is_refused_naming_it(tmp_path) -> None:
    base = make_pet(tmp_path, per_breed=2)
    image = next((base / "images").glob("*.jpg"))
    image.write_bytes(image.read_bytes()[:200])
    with pytest.raises(UserInputError, match="cannot read image") as error:
        with_defaults(PetDataModule, str(base), image_size=32).setup()
    assert str(image) in str(error.value)  # the whole path, as every image refusal gives it


def test_pet_accepts_the_dataset_folder_or_its_parent(tmp_path) -> None:
    base = make_pet(tmp_path, per_breed=2)
    by_folder, by_parent = with_defaults(PetDataModule, str(base), image_size=32), with_defaults(PetDataModule, str(tmp_path), image_size=32)
    by_folder.setup()
    by_parent.setup()
    assert by_parent.data_dir == base
    assert all(np.array_equal(by_folder.splits[s].images, by_parent.splits[s].images) for s in ("train", "val", "test"))


@pytest.mark.slow
def test_paths_with_spaces_and_accents_train_end_to_end(make_cfg, tmp_path) -> None:
    folder = tmp_path / "dados de teste ç" / "eliret ñ"
    generate(EliretSpec(n_per_class=8), folder)
    cfg = make_cfg(
        "train", f"data.data_dir='{folder}'", "data.n_per_class=8", "reduction.rounds=2", "reduction.epochs_per_round=1", "callbacks.model_summary=null"
    )
    metrics = train(cfg)
    assert np.isfinite(metrics["test/loss"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["pair", "blank", "spaces", "bad"]), min_size=1, max_size=12))
def test_split_csv_lines_are_parsed_or_the_first_bad_one_is_named(tmp_path, lines) -> None:
    folder = tmp_path / f"csv{abs(hash(tuple(lines)))}"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(b"")
    text = {"pair": "a.png;b.png", "blank": "", "spaces": "   ", "bad": "a.png b.png"}
    (folder / "split.csv").write_text("\n".join(text[kind] for kind in lines) + "\n")
    if "bad" in lines:
        with pytest.raises(UserInputError, match=rf"split\.csv:{lines.index('bad') + 1}: expected"):
            read_split_csv(folder / "split.csv")
    elif "pair" in lines:
        assert len(read_split_csv(folder / "split.csv")) == lines.count("pair")
    else:
        with pytest.raises(UserInputError, match="lists no image pairs"):
            read_split_csv(folder / "split.csv")


READERS = {
    "header": header,
    "read_image": lambda path: read_image(path, 1, None),
    "read_gray": read_gray,
    "read_rgb": read_rgb,
    "read_raw_mask": read_raw_mask,
    "read_label": read_label,
    "read_stack": read_stack,
}


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_every_image_reader_names_the_file_it_cannot_read(tmp_path: Path, reader) -> None:
    broken = tmp_path / "scans" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature and nothing readable after it
    with pytest.raises(UserInputError) as error:
        reader(broken)
    assert "cannot read" in str(error.value) and str(broken) in str(error.value)
