"""Typed schemas (structured configs in Hydra's ConfigStore) for the groups users edit most, and
the ranges checked before any data is read.

Each YAML option of these groups starts from its schema (``defaults: [/schema/<group>/<name>@_here_,
_self_]``), so ``reduction.percentile=abc`` fails while the config is composed, naming the key, and a
misspelt key (``reduction.percentil=50``) is refused instead of silently ignored. Ranges are
checked by :func:`check_ranges` at the start of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from src.config.errors import UserInputError


@dataclass
class ReductionSchema:
    _target_: str = "src.reduction.callback.SaliencyReduction"
    rounds: int = 3
    epochs_per_round: int = 1
    percentile: float = 90.0
    cumulative: bool = True
    fill: str = "zero"
    method: str = "prediction"
    keep: str = "most"
    background_class: int = 0
    reinit: bool = False
    batch_size: int = 64
    examples: int = 6
    ig_steps: int = 16
    smoothgrad_samples: int = 8
    smoothgrad_stdev: float = 0.1
    seed: int = 0
    smooth_scale: float = 0.1
    impute_noise: float = 0.01
    oracle_margin: int = 2
    removed: str = "label"
    output_dir: str = MISSING


@dataclass
class OptimizerSchema:
    _target_: str = MISSING
    _partial_: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.0


@dataclass
class SGDSchema(OptimizerSchema):
    momentum: float = 0.0


@dataclass
class DataSchema:
    _target_: str = MISSING
    data_dir: str = MISSING
    batch_size: int = 16
    num_workers: int = 0
    pin_memory: bool = False
    image_size: int = 128


@dataclass
class GeneratedSchema(DataSchema):
    generate: bool = True
    n_per_class: int = 100
    noise: float = 0.08
    max_offset: float = 0.0
    max_rotation: float = 0.0
    generator_seed: int = 0
    occluders: int = 0


@dataclass
class EliretSchema(GeneratedSchema):
    augment: Any = None
    test_split: str = "test"


@dataclass
class ShortcutSchema(DataSchema):
    generate: bool = True
    n_train: int = 200
    n_val: int = 100
    n_test: int = 100
    image_size: int = 32
    cue_correlation: float = 0.95
    noise: float = 0.1
    contrast: float = 0.3
    min_half_axis: float = 0.15
    max_half_axis: float = 0.3
    stripe_amplitude: float = 0.15
    stripe_period: int = 4
    generator_seed: int = 0
    augment: Any = None
    test_split: str = "reversed"


@dataclass
class MembraneSchema(DataSchema):
    label_resize: str = "majority"
    val_count: int = 5
    test_count: int = 0
    split_seed: int = 0
    augment: Any = None
    crop_size: int | None = None
    border_weights: bool = False
    w0: float = 10.0
    sigma: float = 5.0


@dataclass
class FolderSchema(DataSchema):
    image_size: int | None = None
    crop_size: int | None = None
    classes: int = 2
    foreground: int | None = None
    mask_values: list[int] | None = None
    ignore_index: int | None = None
    channels: int | None = None
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: int = 0
    intensity_max: float | None = None
    memory_limit_mb: float = 4096.0
    augment: Any = None


@dataclass
class PetSchema(DataSchema):
    classes: int = 3
    split: str = "random"
    split_seed: int = 0
    download: bool = False
    augment: Any = None


@dataclass
class PetClassesSchema(DataSchema):
    target: str = "species"
    split: str = "random"
    split_seed: int = 0
    download: bool = False


SCHEMAS = {
    ("reduction", "saliency"): ReductionSchema,
    ("model/optimizer", "adam"): OptimizerSchema,
    ("model/optimizer", "sgd"): SGDSchema,
    ("data", "eliret"): EliretSchema,
    ("data", "eliret_cls"): GeneratedSchema,
    ("data", "membrane"): MembraneSchema,
    ("data", "shortcut"): ShortcutSchema,
    ("data", "folder"): FolderSchema,
    ("data", "pet"): PetSchema,
    ("data", "pet_cls"): PetClassesSchema,
}


def register() -> None:
    store = ConfigStore.instance()
    for (group, name), schema in SCHEMAS.items():
        # in a group of their own (schema/...), so they are never offered as options of the group
        store.store(group=f"schema/{group}", name=name, node=schema)


# key: (check, what the value must be)
RANGES = {
    "reduction.percentile": (lambda v: 0 < v <= 100, "in (0, 100]: the share of pixels kept per round"),
    "reduction.rounds": (lambda v: v >= 0, ">= 0 (0 trains once, without reduction)"),
    "reduction.epochs_per_round": (lambda v: v >= 1, ">= 1"),
    "reduction.batch_size": (lambda v: v >= 1, ">= 1"),
    "reduction.oracle_margin": (lambda v: v >= 0, ">= 0 pixels"),
    "data.batch_size": (lambda v: v >= 1, ">= 1"),
    "data.num_workers": (lambda v: v >= 0, ">= 0"),
    "data.image_size": (lambda v: v >= 8, ">= 8 pixels"),
    "model.optimizer.lr": (lambda v: 0 < v < 10, "in (0, 10), e.g. 1e-3"),
    "model.optimizer.weight_decay": (lambda v: v >= 0, ">= 0"),
    "trainer.max_epochs": (lambda v: v is None or v == -1 or v >= 1, ">= 1 (or -1: no limit)"),
    "seed": (lambda v: 0 <= v < 2**32, "in [0, 2**32)"),
}


def check_ranges(cfg: DictConfig) -> None:
    """Every out-of-range value of :data:`RANGES`, in one error that names each key (the
    reduction's settings only where it runs)."""
    problems = []
    reducing = (OmegaConf.select(cfg, "reduction.rounds", default=0) or 0) > 0
    for key, (valid, meaning) in RANGES.items():
        if key.startswith("reduction.") and key != "reduction.rounds" and not reducing:
            continue  # rounds=0 or reduction=none: the reduction's settings do not apply
        value = OmegaConf.select(cfg, key, default=None)
        if value is None or isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)):
            problems.append(f"{key}={value!r} must be a number {meaning}")
        elif not valid(value):
            problems.append(f"{key}={value:g} must be {meaning}")
    if problems:
        raise UserInputError("; ".join(problems) + ".")
