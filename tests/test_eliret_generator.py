import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.config.errors import UserInputError
from src.data.eliret_generator import EliretSpec, ensure_eliret, generate, split_indices

# one worker runs the module under pytest-xdist, so its module-scoped fixture is built once
pytestmark = pytest.mark.xdist_group("eliret_generator")


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def eliret(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gen") / "eliret"
    generate(EliretSpec(), folder)
    return folder


def test_layout_matches_the_original_study(eliret: Path) -> None:
    names = {p.name for p in eliret.iterdir()}
    assert {f"{i:03d}x.png" for i in range(200)} <= names
    assert {f"{i:03d}y.png" for i in range(200)} <= names
    assert {f"maior{n}{s}.png" for n in range(1, 7) for s in "xy"} <= names
    expected = {
        "treino.csv": list(range(0, 50)) + list(range(100, 150)),
        "valida.csv": list(range(50, 75)) + list(range(150, 175)),
        "teste.csv": list(range(75, 100)) + list(range(175, 200)),
    }
    for csv, indices in expected.items():
        lines = (eliret / csv).read_text().split()
        assert lines == [f"{i:03d}x.png;{i:03d}y.png" for i in indices]


def test_images_are_32x32_gray_and_masks_binary(eliret: Path) -> None:
    for i in (0, 99, 100, 199):
        x = np.asarray(Image.open(eliret / f"{i:03d}x.png"))
        y = np.asarray(Image.open(eliret / f"{i:03d}y.png"))
        assert x.shape == y.shape == (32, 32) and x.dtype == np.uint8
        assert set(np.unique(y)) == {0, 255}
        # centred: the mask's centroid is the image centre (within a pixel)
        rows, cols = np.nonzero(y)
        assert abs(rows.mean() - 15.5) < 1.0 and abs(cols.mean() - 15.5) < 1.0


def test_rectangles_fill_their_bounding_box_and_ellipses_do_not(eliret: Path) -> None:
    def fill(i: int) -> float:
        y = np.asarray(Image.open(eliret / f"{i:03d}y.png")) > 0
        rows, cols = np.nonzero(y)
        return y.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1))

    assert all(fill(i) == 1.0 for i in range(100, 110))
    assert all(fill(i) < 0.9 for i in range(0, 10))


def count_components(mask: np.ndarray) -> int:
    """4-connected components, by flood fill (small images only)."""
    seen = np.zeros_like(mask, dtype=bool)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        while stack:
            r, c = stack.pop()
            if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c] and not seen[r, c]:
                seen[r, c] = True
                stack += [(r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)]
    return count


def test_large_images_have_the_original_study_sizes_and_several_shapes(eliret: Path) -> None:
    sizes = [np.asarray(Image.open(eliret / f"maior{n}x.png")).shape for n in range(1, 7)]
    assert sizes == [(72, 88)] * 3 + [(80, 88)] * 3
    for n in range(1, 7):
        assert count_components(np.asarray(Image.open(eliret / f"maior{n}y.png")) > 0) >= 2


def test_generation_is_deterministic_and_seeded(tmp_path: Path, eliret: Path) -> None:
    generate(EliretSpec(), tmp_path / "again")
    generate(EliretSpec(seed=1), tmp_path / "other")
    assert digest(tmp_path / "again") == digest(eliret)
    assert digest(tmp_path / "other") != digest(eliret)


def test_split_indices_scale_with_n_per_class() -> None:
    splits = split_indices(8)
    assert splits == {"train": [0, 1, 2, 3, 8, 9, 10, 11], "val": [4, 5, 12, 13], "test": [6, 7, 14, 15]}


def test_difficulty_knobs_move_and_rotate_shapes(tmp_path: Path) -> None:
    generate(EliretSpec(n_per_class=20, max_offset=1.0, max_rotation=45, noise=0.2), tmp_path / "hard")
    centres = []
    for i in range(40):
        rows, cols = np.nonzero(np.asarray(Image.open(tmp_path / "hard" / f"{i:03d}y.png")))
        centres.append((rows.mean(), cols.mean()))
    assert np.abs(np.array(centres) - 15.5).max() > 2.0


def test_existing_set_with_other_parameters_is_refused(eliret: Path) -> None:
    with pytest.raises(UserInputError, match="delete"):
        ensure_eliret(EliretSpec(noise=0.3), eliret, allow_generate=True)


def test_original_download_without_spec_file_is_used_as_is(tmp_path: Path, eliret: Path) -> None:
    original = tmp_path / "original"
    original.mkdir()
    for path in eliret.iterdir():
        if path.name != "eliret.json":
            (original / path.name).write_bytes(path.read_bytes())
    ensure_eliret(EliretSpec(noise=0.3), original, allow_generate=False)  # no error, no rewrite
    assert not (original / "eliret.json").exists()


def test_missing_or_incomplete_data_dir_names_the_fix(tmp_path: Path, eliret: Path) -> None:
    with pytest.raises(UserInputError, match="data.generate=true"):
        ensure_eliret(EliretSpec(), tmp_path / "absent", allow_generate=False)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "treino.csv").write_text("000x.png;000y.png\n")
    with pytest.raises(UserInputError, match="valida.csv, teste.csv missing"):
        ensure_eliret(EliretSpec(), partial, allow_generate=True)


def test_bad_spec_values_are_refused() -> None:
    with pytest.raises(UserInputError, match="n_per_class"):
        EliretSpec(n_per_class=2)
    with pytest.raises(UserInputError, match="max_offset"):
        EliretSpec(max_offset=1.5)
