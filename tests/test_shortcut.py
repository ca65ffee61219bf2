"""The shortcut set: a background cue correlated with the class, and test splits that keep,
reverse or drop it."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.config.errors import UserInputError
from src.data.shortcut_generator import HORIZONTAL, NO_CUE, SPLITS, TEST_SPLITS, ShortcutSpec, generate, make_sample
from src.jobs.builders import build_datamodule

# one worker runs the module under pytest-xdist, so its module-scoped fixture is built once
pytestmark = pytest.mark.xdist_group("shortcut")

SPEC = ShortcutSpec(n_train=400, n_val=200, n_test=60)


@pytest.fixture(scope="module")
def shortcut_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shortcut") / "set"
    generate(SPEC, folder)
    return folder


def cue_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "cues.csv") as handle:
        return list(csv.DictReader(handle))


def read_pair(folder: Path, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(folder / split / f"{index:04d}x.png")).astype(np.int16)
    return image, np.asarray(Image.open(folder / split / f"{index:04d}y.png"))


def test_the_cue_lies_only_in_background_pixels(shortcut_dir: Path) -> None:
    # the three test splits hold the same images but for the cue: they differ on background pixels alone
    for index in range(SPEC.n_test):
        (aligned, classes), (reversed_, classes_r), (neutral, classes_n) = (read_pair(shortcut_dir, f"test_{s}", index) for s in TEST_SPLITS)
        assert (classes == classes_r).all() and (classes == classes_n).all()
        objects = classes > 0
        assert objects.any() and set(np.unique(classes)) <= {0, 1 + index % 2}
        for striped in (aligned, reversed_):
            assert (striped[objects] == neutral[objects]).all()
            assert (striped[~objects] != neutral[~objects]).mean() > 0.5  # the stripes are there


def test_the_cue_matches_the_class_at_the_configured_rate(shortcut_dir: Path) -> None:
    rows = cue_rows(shortcut_dir)
    for split, count in (("train", SPEC.n_train), ("val", SPEC.n_val)):
        own = [r["cue"] == r["class"] for r in rows if r["split"] == split]
        assert len(own) == count
        # within 3 binomial standard errors of cue_correlation
        assert abs(np.mean(own) - SPEC.cue_correlation) <= 3 * math.sqrt(SPEC.cue_correlation * (1 - SPEC.cue_correlation) / count)
        assert not all(own)  # some images carry the other class's cue


def test_reversed_swaps_the_cue_and_neutral_has_none(shortcut_dir: Path) -> None:
    rows = cue_rows(shortcut_dir)
    by_split = {split: [r for r in rows if r["split"] == split] for split in SPLITS}
    assert all(r["cue"] == r["class"] for r in by_split["test_aligned"])
    assert all(int(r["cue"]) == 3 - int(r["class"]) for r in by_split["test_reversed"])
    assert all(int(r["cue"]) == NO_CUE for r in by_split["test_neutral"])
    # the difference a cue makes on the background is the stripes of its orientation
    for index in range(6):
        image, classes, cue = make_sample(SPEC, "test_aligned", index)
        plain, _, none = make_sample(SPEC, "test_neutral", index)
        assert none == NO_CUE
        difference = image.astype(float) - plain.astype(float)
        unclipped = (classes == 0) & (image > 5) & (image < 250) & (plain > 5) & (plain < 250)
        assert difference[unclipped].std() > 0.5 * SPEC.stripe_amplitude * 255
        # horizontal stripes are constant along each row, vertical ones along each column
        lines, keep = (difference, unclipped) if cue == HORIZONTAL else (difference.T, unclipped.T)
        for line, kept in zip(lines, keep):
            if kept.sum() > 2:
                assert line[kept].std() <= 1.0  # one stripe value per line: rounding only


def test_the_same_seed_gives_the_same_files(tmp_path: Path) -> None:
    small = ShortcutSpec(n_train=6, n_val=4, n_test=4)
    generate(small, tmp_path / "a")
    generate(small, tmp_path / "b")
    generate(ShortcutSpec(n_train=6, n_val=4, n_test=4, seed=1), tmp_path / "c")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 2 * (6 + 4 + 3 * 4) + 2
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert any((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files if f.suffix == ".png")


def test_the_data_module_serves_three_classes_and_every_test_split(make_cfg, tmp_path: Path) -> None:
    own = f"data.data_dir={tmp_path / 'shortcut'}"  # not the session's: other tests generate other specs there
    datamodule = build_datamodule(make_cfg("train", "data=shortcut", own, "data.n_train=8", "data.n_val=4", "data.n_test=4", "data.test_split=neutral"))
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape[1:] == (1, 32, 32) and batch["mask"].dtype.is_floating_point is False
    assert set(batch["mask"].unique().tolist()) <= {0, 1, 2}
    assert datamodule.test_splits == TEST_SPLITS
    assert datamodule.splits["test"] is datamodule.splits["test_neutral"]
    assert len(datamodule.split_dataloader("reversed").dataset) == 4


def test_a_changed_spec_on_an_existing_folder_is_refused(make_cfg, tmp_path: Path) -> None:
    own = f"data.data_dir={tmp_path / 'shortcut'}"
    datamodule = build_datamodule(make_cfg("train", "data=shortcut", own, "data.n_train=8", "data.n_val=4", "data.n_test=4"))
    datamodule.prepare_data()
    changed = build_datamodule(make_cfg("train", "data=shortcut", own, "data.n_train=8", "data.n_val=4", "data.n_test=4", "data.cue_correlation=0.5"))
    with pytest.raises(UserInputError, match="delete .* to regenerate"):
        changed.prepare_data()
