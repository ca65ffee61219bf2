"""The shortcut set: a background cue correlated with the class, and test splits that keep,
reverse or drop it."""

import csv
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt

from src.config.errors import UserInputError
from src.data.shortcut_generator import (
    CUE_RAMP,
    HORIZONTAL,
    NO_CUE,
    SPLITS,
    TEST_SPLITS,
    ShortcutSpec,
    draw_sample,
    generate,
    gradient,
    make_sample,
    sample_class,
)
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


@pytest.mark.parametrize("cue", [{}, {"cue": "gradient", "cue_guard": 4, "balanced_val": True}])
def test_the_same_seed_gives_the_same_files(tmp_path: Path, cue: dict) -> None:
    small = ShortcutSpec(n_train=6, n_val=4, n_test=4, **cue)
    generate(small, tmp_path / "a")
    generate(small, tmp_path / "b")
    generate(ShortcutSpec(n_train=6, n_val=4, n_test=4, seed=1, **cue), tmp_path / "c")
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


GUARDED = ShortcutSpec(n_train=400, n_val=40, n_test=20, cue="gradient", cue_guard=3, balanced_val=True)


def test_a_guarded_cue_lies_only_beyond_its_band_and_never_on_the_object() -> None:
    for split in ("train", "test_aligned", "test_reversed"):
        for index in range(20):
            sample = draw_sample(GUARDED, split, index)
            distance = distance_transform_edt(sample.classes == 0)  # to the nearest object pixel
            component = np.abs(sample.cue_component)
            assert (component[distance <= GUARDED.cue_guard] == 0).all()  # the object and the band: nothing
            ramp = (distance > GUARDED.cue_guard) & (distance < GUARDED.cue_guard + CUE_RAMP)
            far = distance >= GUARDED.cue_guard + CUE_RAMP
            full = GUARDED.stripe_amplitude * np.abs(gradient(GUARDED.size, sample.cue))
            assert np.allclose(component[far], full[far])  # full strength beyond the ramp
            assert (component[ramp] <= full[ramp]).all()  # rising across it, no edge
            # the stored image is the cue-free image plus the cue, up to rounding and clipping
            unclipped = (sample.image > 0) & (sample.image < 255) & (sample.cue_free > 0) & (sample.cue_free < 255)
            added = (sample.image.astype(float) - sample.cue_free) / 255
            assert np.abs(added - sample.cue_component)[unclipped].max() <= 1 / 255


def test_a_gradient_cue_names_the_class_by_its_direction_and_the_test_splits_keep_or_swap_it() -> None:
    for index in range(8):
        aligned, reversed_, neutral = (draw_sample(GUARDED, f"test_{s}", index) for s in TEST_SPLITS)
        own = 1 + index % 2
        assert (aligned.cue, reversed_.cue, neutral.cue) == (own, 3 - own, NO_CUE)
        assert not neutral.cue_component.any() and np.array_equal(neutral.image, neutral.cue_free)
        assert np.array_equal(aligned.cue_free, reversed_.cue_free)  # the same image but for the cue
        # where the cue is at full strength it is the class's ramp: brighter down the rows for
        # HORIZONTAL, across the columns for VERTICAL
        full = distance_transform_edt(aligned.classes == 0) >= GUARDED.cue_guard + CUE_RAMP
        assert np.array_equal(aligned.cue_component[full], GUARDED.stripe_amplitude * gradient(GUARDED.size, aligned.cue)[full])
    ramp = np.linspace(-1, 1, GUARDED.size)
    assert np.array_equal(gradient(GUARDED.size, HORIZONTAL), np.repeat(ramp[:, None], GUARDED.size, 1))
    assert np.array_equal(gradient(GUARDED.size, 3 - HORIZONTAL), np.repeat(ramp[None, :], GUARDED.size, 0))


def test_a_balanced_validation_split_is_half_aligned_and_half_reversed_per_class() -> None:
    cues = [(sample_class(i), draw_sample(GUARDED, "val", i).cue) for i in range(GUARDED.n_val)]
    for label in (1, 2):
        own = [cue == label for cls, cue in cues if cls == label]
        assert sum(own) == len(own) / 2
    train = [draw_sample(GUARDED, "train", i).cue == sample_class(i) for i in range(GUARDED.n_train)]
    p = GUARDED.cue_correlation
    assert abs(np.mean(train) - p) <= 3 * math.sqrt(p * (1 - p) / GUARDED.n_train)


def test_the_default_cue_kind_and_no_guard_reproduce_the_stored_set_and_bad_kinds_are_refused() -> None:
    # a spec from before the cue kinds (no cue, cue_guard, balanced_val keys) reads as the same set
    assert ShortcutSpec(**{k: v for k, v in asdict(SPEC).items() if k not in ("cue", "cue_guard", "balanced_val")}) == SPEC
    with pytest.raises(UserInputError, match="data.cue='shade'.*stripes, gradient"):
        ShortcutSpec(cue="shade")
    with pytest.raises(UserInputError, match="data.cue_guard=-1"):
        ShortcutSpec(cue_guard=-1)


@pytest.mark.parametrize("place", ["far", "near", "patch"])
def test_each_placement_puts_its_cue_where_it_says_with_the_configured_correlation(place: str) -> None:
    spec = ShortcutSpec(n_train=400, cue_guard=3, cue_place=place, cue_correlation=0.8, patch_size=5)
    own = 0
    for index in range(spec.n_train):
        sample = draw_sample(spec, "train", index)
        shape = sample.classes > 0
        distance = distance_transform_edt(~shape)
        cued = sample.cue_component != 0
        assert cued.any() and not (cued & shape).any()
        if place == "far":  # beyond the guard band
            assert distance[cued].min() > spec.cue_guard
        elif place == "near":  # inside it: every pixel 1..guard away, and all of them
            assert distance[cued].max() <= spec.cue_guard and cued.sum() == ((distance >= 1) & (distance <= spec.cue_guard)).sum()
        else:  # one patch_size square, cut by nothing (a free place exists for these small shapes)
            rows, columns = np.nonzero(cued)
            assert rows.max() - rows.min() + 1 == spec.patch_size and columns.max() - columns.min() + 1 == spec.patch_size
        own += sample.cue == sample_class(index)
    assert own / spec.n_train == pytest.approx(spec.cue_correlation, abs=0.05)
    # the patch lies near the object in some images and far in others
    if place == "patch":
        nearest = [distance_transform_edt(~(s.classes > 0))[s.cue_component != 0].min() for s in (draw_sample(spec, "train", i) for i in range(100))]
        assert min(nearest) <= spec.cue_guard < max(nearest)


def test_the_data_seed_changes_the_training_set_and_not_the_test_splits() -> None:
    first, second = ShortcutSpec(data_seed=0), ShortcutSpec(data_seed=1)
    for split in ("train", "val"):
        assert not np.array_equal(draw_sample(first, split, 3).image, draw_sample(second, split, 3).image)
    for split in (f"test_{name}" for name in TEST_SPLITS):
        for index in range(5):
            assert np.array_equal(draw_sample(first, split, index).image, draw_sample(second, split, index).image)
            assert np.array_equal(draw_sample(first, split, index).image, draw_sample(ShortcutSpec(), split, index).image)
    # no data seed: the set as it was generated before the setting existed
    assert np.array_equal(draw_sample(ShortcutSpec(data_seed=None), "train", 3).image, make_sample(ShortcutSpec(), "train", 3)[0])


def test_a_placement_that_cannot_hold_is_refused() -> None:
    with pytest.raises(UserInputError, match="cue_place=near puts the cue within data.cue_guard pixels of the object: set data.cue_guard >= 1"):
        ShortcutSpec(cue_place="near", cue_guard=0)
    with pytest.raises(UserInputError, match=r"unknown data.cue_place='nearby'; did you mean near\? choose one of far, near, patch"):
        ShortcutSpec(cue_place="nearby")
