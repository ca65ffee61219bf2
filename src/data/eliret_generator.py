"""Deterministic generator for the *eliret* teaching set (noisy ellipses and rectangles).

The original download is unreachable, so the set is rebuilt from its description in the original study:
32x32 grayscale pairs ``NNNx.png`` (input) / ``NNNy.png`` (ideal mask, 0/255), ellipses first,
rectangles second, split by ``treino.csv`` / ``valida.csv`` / ``teste.csv``, plus six larger
``maiorNx.png`` images with several off-centre shapes. The defaults reproduce the original study's layout
exactly (100 + 100 pairs, shapes centred); ``noise``, ``max_offset`` and ``max_rotation`` make it
harder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from src.config.errors import UserInputError
from src.config.schemas.data import EliretDataSchema
from src.data import generated_set
from src.data.generated_set import write_generated

SPLIT_FILES = {"train": "treino.csv", "val": "valida.csv", "test": "teste.csv"}
SPEC_FILE = "eliret.json"
# (height, width) of the six larger test images of the original study: three 72x88, three 80x88.
LARGE_SHAPES = [(72, 88)] * 3 + [(80, 88)] * 3
MIN_CONTRAST = 0.25


@dataclass(frozen=True)
class EliretSpec:
    """Everything that determines the generated files; stored beside them as ``eliret.json``."""

    # the defaults are the data schema's (`data=eliret`), their one place
    n_per_class: int = EliretDataSchema.n_per_class
    size: int = EliretDataSchema.image_size
    noise: float = EliretDataSchema.noise
    max_offset: float = EliretDataSchema.max_offset
    max_rotation: float = EliretDataSchema.max_rotation
    seed: int = EliretDataSchema.generator_seed
    occluders: int = EliretDataSchema.occluders  # random gray bars drawn over each single-shape image (a harder classification set)

    def __post_init__(self) -> None:
        if self.n_per_class < 4:
            raise UserInputError(
                f"eliret n_per_class={self.n_per_class} is too small: each class needs at least "
                "4 images to fill the train/val/test splits; use data.n_per_class >= 4."
            )
        if self.size < 16:
            raise UserInputError(f"eliret size={self.size} is too small; use data.image_size >= 16.")
        if not 0.0 <= self.max_offset <= 1.0:
            raise UserInputError(
                f"eliret max_offset={self.max_offset} must be a fraction in [0, 1] of the free margin around a shape; set data.max_offset accordingly."
            )
        if self.noise < 0:
            raise UserInputError(f"eliret noise={self.noise} must be >= 0 (a standard deviation).")
        if self.occluders < 0:
            raise UserInputError(f"eliret occluders={self.occluders} must be >= 0 (bars drawn over each image).")


def split_indices(n_per_class: int) -> dict[str, list[int]]:
    """Image indices per split: per class, the first half trains, the next quarter validates,
    the last quarter tests. For 100 per class these are the original study's ranges (000-049 + 100-149 ...)."""
    n_train, n_val = n_per_class // 2, n_per_class // 4
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n_per_class)}
    return {split: [c * n_per_class + i for c in (0, 1) for i in range(lo, hi)] for split, (lo, hi) in bounds.items()}


def file_stem(index: int, n_total: int) -> str:
    return f"{index:0{max(3, len(str(n_total - 1)))}d}"


def shape_mask(height: int, width: int, kind: str, centre: tuple[float, float], half_axes: tuple[float, float], angle: float) -> np.ndarray:
    """Boolean mask of an ellipse or rectangle, tested at pixel centres in the shape's own frame."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    dy, dx = yy - centre[0], xx - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    a, b = half_axes
    if kind == "ellipse":
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    return (np.abs(u) <= a) & (np.abs(v) <= b)


def _levels(rng: np.random.Generator) -> tuple[float, float]:
    """Background and shape gray levels, at least MIN_CONTRAST apart."""
    while True:
        background, foreground = rng.uniform(0.05, 0.95, size=2)
        if abs(foreground - background) >= MIN_CONTRAST:
            return float(background), float(foreground)


def _render(mask: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    background, foreground = _levels(rng)
    image = np.where(mask, foreground, background) + rng.normal(0.0, noise, size=mask.shape)
    return np.clip(image, 0.0, 1.0)


def _half_axes(rng: np.random.Generator, size: int) -> tuple[float, float]:
    return tuple(rng.uniform(0.12 * size, 0.42 * size, size=2))


def make_sample(spec: EliretSpec, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One (image, mask) pair as uint8 arrays; sample ``index`` depends only on (seed, index)."""
    rng = np.random.default_rng([spec.seed, index])
    kind = "ellipse" if index < spec.n_per_class else "rectangle"
    half = _half_axes(rng, spec.size)
    angle = np.deg2rad(rng.uniform(-spec.max_rotation, spec.max_rotation))
    centre = (spec.size - 1) / 2.0
    margin = max(0.0, centre - max(half))
    offset = rng.uniform(-1.0, 1.0, size=2) * spec.max_offset * margin
    mask = shape_mask(spec.size, spec.size, kind, (centre + offset[0], centre + offset[1]), half, angle)
    image = _render(mask, rng, spec.noise)
    _occlude(image, rng, spec.occluders, spec.noise)  # drawn last: sets without occluders are unchanged
    return (image * 255).round().astype(np.uint8), mask.astype(np.uint8) * 255


def _occlude(image: np.ndarray, rng: np.random.Generator, count: int, noise: float) -> None:
    """Draw ``count`` axis-aligned bars (5-40% of the side each way) of random gray levels over
    ``image``; the mask keeps the shape alone. Rectangle-like distractors: a shape's class is no
    longer told by any straight edge in the image."""
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(count):
        height, width = rng.uniform(0.05, 0.4, size=2) * size
        top, left = rng.uniform(-height / 2, size - height / 2), rng.uniform(-width / 2, size - width / 2)
        bar = (yy >= top) & (yy < top + height) & (xx >= left) & (xx < left + width)
        image[bar] = np.clip(rng.uniform(0.0, 1.0) + rng.normal(0.0, noise, size=int(bar.sum())), 0.0, 1.0)


def make_large_sample(spec: EliretSpec, number: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the six larger images: 2-4 non-overlapping shapes placed anywhere."""
    rng = np.random.default_rng([spec.seed, 10**6 + number])
    height, width = LARGE_SHAPES[number - 1]
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(int(rng.integers(2, 5))):
        for _attempt in range(50):
            half = _half_axes(rng, spec.size)
            reach = max(half)
            centre = (rng.uniform(reach, height - 1 - reach), rng.uniform(reach, width - 1 - reach))
            kind = "ellipse" if rng.random() < 0.5 else "rectangle"
            shape = shape_mask(height, width, kind, centre, half, 0.0)
            # keep a one-pixel gap so shapes stay separate components
            grown = shape | np.roll(shape, 1, 0) | np.roll(shape, -1, 0) | np.roll(shape, 1, 1) | np.roll(shape, -1, 1)
            if not (grown & mask).any():
                mask |= shape
                break
    image = _render(mask, rng, spec.noise)
    return (image * 255).round().astype(np.uint8), mask.astype(np.uint8) * 255


def read_spec(data_dir: Path) -> EliretSpec | None:
    stored = generated_set.read_spec(data_dir, SPEC_FILE)
    return None if stored is None else EliretSpec(**stored)


def generate(spec: EliretSpec, data_dir: Path) -> None:
    """Write the whole set into ``data_dir`` atomically (see :func:`write_generated`)."""

    def write_files(tmp: Path) -> None:
        n_total = 2 * spec.n_per_class
        for index in range(n_total):
            image, mask = make_sample(spec, index)
            stem = file_stem(index, n_total)
            Image.fromarray(image).save(tmp / f"{stem}x.png")
            Image.fromarray(mask).save(tmp / f"{stem}y.png")
        for split, indices in split_indices(spec.n_per_class).items():
            lines = [f"{file_stem(i, n_total)}x.png;{file_stem(i, n_total)}y.png" for i in indices]
            (tmp / SPLIT_FILES[split]).write_text("\n".join(lines) + "\n")
        for number in range(1, len(LARGE_SHAPES) + 1):
            image, mask = make_large_sample(spec, number)
            Image.fromarray(image).save(tmp / f"maior{number}x.png")
            Image.fromarray(mask).save(tmp / f"maior{number}y.png")

    write_generated(data_dir, SPEC_FILE, asdict(spec), write_files)


def ensure_eliret(spec: EliretSpec, data_dir: Path, allow_generate: bool) -> None:
    """Make sure ``data_dir`` holds an eliret set matching ``spec``; generate it when absent.

    A folder with the split CSVs but no ``eliret.json`` is taken as the original download and
    used as it is.
    """
    data_dir = Path(data_dir)
    present = data_dir.is_dir() and any(data_dir.iterdir())
    if not present:
        if not allow_generate:
            raise UserInputError(
                f"eliret data not found in {data_dir}. Set data.generate=true to generate it there, "
                "or point data.data_dir at a folder holding treino.csv, valida.csv, teste.csv and the PNGs."
            )
        generate(spec, data_dir)
        return
    stored = read_spec(data_dir)
    if stored is not None and stored != spec:
        raise UserInputError(
            f"{data_dir} holds an eliret set generated with {asdict(stored)}, but the config asks for "
            f"{asdict(spec)}. Point data.data_dir at another folder, or delete {data_dir} to regenerate."
        )
    missing = [name for name in SPLIT_FILES.values() if not (data_dir / name).exists()]
    if missing:
        raise UserInputError(
            f"eliret data in {data_dir} is incomplete: {', '.join(missing)} missing. Delete the folder "
            "to regenerate it (data.generate=true) or restore the missing files."
        )
