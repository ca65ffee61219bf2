"""Deterministic generator for the *shortcut* set: eliret's two shapes as three classes, with a
spurious cue in the background (in the spirit of Waterbirds and Colored MNIST).

Each 32x32 grayscale image holds one ellipse (class 1) or rectangle (class 2), small, rotated,
noisy and of low contrast, so that its shape is the harder feature. The background carries a cue
whose orientation names the class: ``stripes`` (a square wave of ``stripe_period`` pixels, the
highest frequency the images carry) along the rows for ellipses and along the columns for
rectangles, or ``gradient`` (a slow brightness ramp, darker to brighter down the rows for
ellipses and across the columns for rectangles). Where it lies is ``cue_place``:

- ``far``: with ``cue_guard`` = g > 0 only beyond g pixels (Euclidean) from the object, reaching
  full amplitude over a 2 px ramp, so a map that keeps the object plus a ring of g pixels keeps
  none of it (g = 0: every background pixel);
- ``near``: only in the band 1 to g pixels from the object, inside such a ring, so a compact map
  around the object keeps all of it and only a map that tells cue from object removes it;
- ``patch``: a ``patch_size`` square of the class's stripes (or ramp) at a random background place,
  near the object in some images and far in others.

``data_seed`` (not None) gives the train and val images draws of their own, so each seed of a
study trains on its own set while every test split stays the same. In the train split an image
carries its own class's cue with probability ``cue_correlation`` and the other class's
otherwise; val does the same, or with ``balanced_val`` holds half aligned, half reversed images.
The object's pixels never carry the cue. The three test splits hold the same images (shape,
levels, noise) and differ only in the background:

- ``aligned``: every image carries its own class's cue;
- ``reversed``: every image carries the other class's cue;
- ``neutral``: no stripes at all.

:func:`cue_component` and :func:`cue_free_image` give what the generator added and the image
without it, so a reduction's effect on the cue can be measured without a model.

Layout: ``<split>/NNNNx.png`` (image) and ``NNNNy.png`` (classes 0, 1, 2), ``cues.csv`` (split,
file, class, cue: 0 none, 1 horizontal, 2 vertical) and ``shortcut.json`` (the spec).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from scipy.ndimage import distance_transform_edt

from src.config.errors import UserInputError
from src.config.schemas import check_choice
from src.config.schemas.data import CUE_PLACES, CUES, ShortcutDataSchema
from src.config.schemas.data import SHORTCUT_TEST_SPLITS as TEST_SPLITS
from src.data import generated_set
from src.data.eliret_generator import shape_mask
from src.data.generated_set import write_generated

SPEC_FILE = "shortcut.json"
CUES_FILE = "cues.csv"
SPLITS = ("train", "val", *(f"test_{name}" for name in TEST_SPLITS))
CLASSES = ("background", "ellipse", "rectangle")
# the cue of each object class: stripes along the rows (1) or along the columns (2)
NO_CUE, HORIZONTAL, VERTICAL = 0, 1, 2
# with a guard band, the cue rises from 0 to full amplitude over this many pixels beyond it (no edge)
CUE_RAMP = 2.0


@dataclass(frozen=True)
class ShortcutSpec:
    """Everything that determines the generated files; stored beside them as ``shortcut.json``."""

    # the defaults are the data schema's (`data=shortcut`), their one place
    n_train: int = ShortcutDataSchema.n_train
    n_val: int = ShortcutDataSchema.n_val
    n_test: int = ShortcutDataSchema.n_test
    size: int = ShortcutDataSchema.image_size
    cue_correlation: float = ShortcutDataSchema.cue_correlation
    noise: float = ShortcutDataSchema.noise
    contrast: float = ShortcutDataSchema.contrast  # the smallest gray-level difference between object and background
    min_half_axis: float = ShortcutDataSchema.min_half_axis  # half axes as fractions of the side
    max_half_axis: float = ShortcutDataSchema.max_half_axis
    stripe_amplitude: float = ShortcutDataSchema.stripe_amplitude  # the cue's amplitude, either kind
    stripe_period: int = ShortcutDataSchema.stripe_period
    seed: int = ShortcutDataSchema.generator_seed
    cue: str = ShortcutDataSchema.cue
    cue_guard: int = ShortcutDataSchema.cue_guard
    balanced_val: bool = ShortcutDataSchema.balanced_val
    cue_place: str = ShortcutDataSchema.cue_place
    patch_size: int = ShortcutDataSchema.patch_size
    data_seed: int | None = ShortcutDataSchema.data_seed

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_val, self.n_test) < 2:
            raise UserInputError("shortcut splits need at least 2 images each (one per class); raise data.n_train, data.n_val and data.n_test.")
        if not 0.0 <= self.cue_correlation <= 1.0:
            raise UserInputError(f"data.cue_correlation={self.cue_correlation} must be a probability in [0, 1].")
        if self.size < 16:
            raise UserInputError(f"shortcut image_size={self.size} is too small; use data.image_size >= 16.")
        if not 0 < self.min_half_axis <= self.max_half_axis < 0.5:
            raise UserInputError("shortcut half axes must satisfy 0 < data.min_half_axis <= data.max_half_axis < 0.5 (fractions of the side).")
        if self.stripe_period < 2:
            raise UserInputError(f"data.stripe_period={self.stripe_period} must be >= 2 pixels.")
        check_choice("data.cue", self.cue, CUES)
        if self.cue_guard < 0:
            raise UserInputError(f"data.cue_guard={self.cue_guard} must be >= 0 pixels (0: the cue on every background pixel).")
        check_choice("data.cue_place", self.cue_place, CUE_PLACES)
        if self.cue_place == "near" and self.cue_guard < 1:
            raise UserInputError("data.cue_place=near puts the cue within data.cue_guard pixels of the object: set data.cue_guard >= 1.")
        if self.cue_place == "patch" and not 2 <= self.patch_size < self.size:
            raise UserInputError(f"data.patch_size={self.patch_size} must be >= 2 and smaller than the image side ({self.size}).")


def split_size(spec: ShortcutSpec, split: str) -> int:
    return {"train": spec.n_train, "val": spec.n_val}.get(split, spec.n_test)


def sample_class(index: int) -> int:
    """Classes alternate: even indices are ellipses (1), odd ones rectangles (2)."""
    return 1 + index % 2


def sample_cue(spec: ShortcutSpec, split: str, index: int, rng: np.random.Generator) -> int:
    """The background's cue: the class's own with probability ``cue_correlation`` in train and
    val, always (``aligned``), never (``reversed``: the other class's) or none (``neutral``).
    With ``balanced_val`` val images alternate in pairs, own, own, other, other: half aligned
    and half reversed, each half with both classes."""
    own, other = sample_class(index), 3 - sample_class(index)
    if split == "val" and spec.balanced_val:
        return own if index % 4 < 2 else other
    if split in ("train", "val"):
        return own if rng.random() < spec.cue_correlation else other
    return {"test_aligned": own, "test_reversed": other, "test_neutral": NO_CUE}[split]


def stripes(size: int, cue: int, period: int, phase: int) -> np.ndarray:
    """A +-1 square wave of ``period`` pixels along the rows (HORIZONTAL) or columns (VERTICAL)."""
    if cue == NO_CUE:
        return np.zeros((size, size))
    coordinate = np.arange(size)[:, None] if cue == HORIZONTAL else np.arange(size)[None, :]
    wave = np.where(((coordinate + phase) // (period // 2)) % 2 == 0, 1.0, -1.0)
    return np.broadcast_to(wave, (size, size)).astype(np.float64)


def gradient(size: int, cue: int) -> np.ndarray:
    """A linear ramp from -1 to +1 down the rows (HORIZONTAL) or across the columns (VERTICAL)."""
    if cue == NO_CUE:
        return np.zeros((size, size))
    ramp = np.linspace(-1.0, 1.0, size)
    coordinate = ramp[:, None] if cue == HORIZONTAL else ramp[None, :]
    return np.broadcast_to(coordinate, (size, size)).astype(np.float64)


def near_weight(shape: np.ndarray, guard: int) -> np.ndarray:
    """1 on the background pixels within ``guard`` pixels (Euclidean) of the object, else 0."""
    distance = distance_transform_edt(~shape)
    return ((distance >= 1) & (distance <= guard)).astype(np.float64)


def patch_weight(shape: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """1 on a ``side`` x ``side`` square at a place drawn uniformly among those that miss the
    object (the background alone where none does), else 0."""
    size = shape.shape[0]
    corners = sliding_window_view(shape, (side, side)).any(axis=(2, 3))
    free = np.argwhere(~corners)
    weight = np.zeros(shape.shape)
    if len(free):
        row, column = free[rng.integers(len(free))]
    else:
        row, column = rng.integers(size - side + 1, size=2)
    weight[row : row + side, column : column + side] = 1.0
    return weight * ~shape


def guard_weight(shape: np.ndarray, guard: int) -> np.ndarray:
    """Where the cue may lie, in [0, 1]: 0 on the object; with ``guard`` = g > 0 also 0 within g
    pixels of it, rising linearly to 1 over the next :data:`CUE_RAMP` pixels."""
    if guard == 0 or not shape.any():
        return (~shape).astype(np.float64)
    distance = distance_transform_edt(~shape)
    return np.clip((distance - guard) / CUE_RAMP, 0.0, 1.0)


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # uint8
    classes: np.ndarray  # uint8
    cue: int  # NO_CUE | HORIZONTAL | VERTICAL
    cue_component: np.ndarray  # what the cue added to the image (float, image units in [0, 1])
    cue_free: np.ndarray  # the same image without its cue (uint8)


def draw_sample(spec: ShortcutSpec, split: str, index: int) -> Sample:
    """One sample with its parts; it depends only on (seed, split, index) and, in train and val,
    ``data_seed``; the three test splits share every draw but the cue."""
    family = {"train": 0, "val": 1}.get(split, 2)  # every test split: the same draws
    entropy = [spec.seed, family, index] + ([spec.data_seed] if spec.data_seed is not None and family < 2 else [])
    rng = np.random.default_rng(entropy)
    label = sample_class(index)
    size = spec.size
    half = tuple(rng.uniform(spec.min_half_axis * size, spec.max_half_axis * size, size=2))
    angle = rng.uniform(0.0, np.pi)
    reach = max(half)
    centre = tuple(rng.uniform(reach, size - 1 - reach, size=2)) if reach < (size - 1) / 2 else ((size - 1) / 2,) * 2
    shape = shape_mask(size, size, CLASSES[label], centre, half, angle)
    while True:
        background, foreground = rng.uniform(0.15, 0.85, size=2)
        if abs(foreground - background) >= spec.contrast:
            break
    noise = rng.normal(0.0, spec.noise, size=(size, size))
    phase = int(rng.integers(spec.stripe_period))
    if spec.cue_place == "patch":
        where = patch_weight(shape, spec.patch_size, rng)
    else:
        where = near_weight(shape, spec.cue_guard) if spec.cue_place == "near" else guard_weight(shape, spec.cue_guard)
    cue = sample_cue(spec, split, index, rng)  # drawn last: the test splits share every draw above
    pattern = stripes(size, cue, spec.stripe_period, phase) if spec.cue == "stripes" else gradient(size, cue)
    component = spec.stripe_amplitude * where * pattern

    def stored(field: np.ndarray) -> np.ndarray:
        return (np.clip(np.where(shape, foreground, field) + noise, 0.0, 1.0) * 255).round().astype(np.uint8)

    classes = np.where(shape, label, 0).astype(np.uint8)
    return Sample(stored(background + component), classes, cue, component, stored(np.full((size, size), background)))


def make_sample(spec: ShortcutSpec, split: str, index: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One (image uint8, classes uint8, cue) triple, as stored."""
    sample = draw_sample(spec, split, index)
    return sample.image, sample.classes, sample.cue


def read_spec(data_dir: Path) -> ShortcutSpec | None:
    stored = generated_set.read_spec(data_dir, SPEC_FILE)
    return None if stored is None else ShortcutSpec(**stored)


def generate(spec: ShortcutSpec, data_dir: Path) -> None:
    """Write every split, ``cues.csv`` and the spec into ``data_dir``, atomically."""

    def write_files(tmp: Path) -> None:
        rows = []
        for split in SPLITS:
            (tmp / split).mkdir()
            for index in range(split_size(spec, split)):
                image, classes, cue = make_sample(spec, split, index)
                Image.fromarray(image).save(tmp / split / f"{index:04d}x.png")
                Image.fromarray(classes).save(tmp / split / f"{index:04d}y.png")
                rows.append({"split": split, "file": f"{index:04d}x.png", "class": sample_class(index), "cue": cue})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        (tmp / CUES_FILE).write_text(text.getvalue())

    write_generated(data_dir, SPEC_FILE, asdict(spec), write_files)


def ensure_shortcut(spec: ShortcutSpec, data_dir: Path, allow_generate: bool) -> None:
    """Make sure ``data_dir`` holds the set of ``spec``; generate it when the folder is absent or empty."""
    data_dir = Path(data_dir)
    if not (data_dir.is_dir() and any(data_dir.iterdir())):
        if not allow_generate:
            raise UserInputError(f"shortcut data not found in {data_dir}; set data.generate=true to generate it there.")
        generate(spec, data_dir)
        return
    stored = read_spec(data_dir)
    if stored != spec:
        found = "no shortcut.json" if stored is None else f"a set generated with {asdict(stored)}"
        raise UserInputError(
            f"{data_dir} holds {found}, but the config asks for {asdict(spec)}. Point data.data_dir at another folder, or delete {data_dir} to regenerate."
        )
