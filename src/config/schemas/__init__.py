"""Typed schemas (structured configs in Hydra's ConfigStore): the one place of every data, model and
reduction default, and of the ranges checked before any data is read.

Each YAML option of these groups starts from its schema (``defaults: [/schema/<group>/<name>@_here_,
_self_]``) and only wires in what the run supplies (paths, the seed, the augment group), so
``reduction.percentile=abc`` fails while the config is composed, naming the key, and a misspelt key
(``reduction.percentil=50``) is refused instead of silently ignored. The classes take these as
required arguments: :func:`with_defaults` builds one outside a config. Ranges are checked by
:func:`check_ranges` at the start of a run, and by :func:`check_values` where a class is built.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import fields
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from src.config.errors import UserInputError
from src.config.schemas.constraints import Range, field_choices, field_ranges
from src.config.schemas.data import (
    EliretClsDataSchema,
    EliretDataSchema,
    FolderDataSchema,
    MembraneDataSchema,
    PetClsDataSchema,
    PetDataSchema,
    ShortcutDataSchema,
)
from src.config.schemas.models import (
    SMP_NET,
    AdamSchema,
    EarlyExitCNNSchema,
    EarlyExitModuleSchema,
    FCNModuleSchema,
    FCNSchema,
    SegmentationModuleSchema,
    SGDSchema,
    SmpModuleSchema,
    UNetModuleSchema,
    UNetSchema,
)
from src.config.schemas.reduction import BackgroundSwapSchema, SaliencyReductionSchema

SCHEMAS = {
    ("reduction", "saliency"): SaliencyReductionSchema,
    ("background_swap", "mixed_rand"): BackgroundSwapSchema,
    ("model", "unet"): UNetModuleSchema,
    ("model", "fcn"): FCNModuleSchema,
    ("model", "smp"): SmpModuleSchema,
    ("model", "early_exit_cnn"): EarlyExitModuleSchema,
    ("model/optimizer", "adam"): AdamSchema,
    ("model/optimizer", "sgd"): SGDSchema,
    ("data", "eliret"): EliretDataSchema,
    ("data", "eliret_cls"): EliretClsDataSchema,
    ("data", "membrane"): MembraneDataSchema,
    ("data", "shortcut"): ShortcutDataSchema,
    ("data", "folder"): FolderDataSchema,
    ("data", "pet"): PetDataSchema,
    ("data", "pet_cls"): PetClsDataSchema,
}

# the schema of each class of ours, by its import path (the segmentation module's settings are
# shared by its nets' options)
BY_TARGET: dict[str, Any] = {
    schema._target_: schema
    for schema in (
        *(s for (group, _), s in SCHEMAS.items() if group in ("data", "reduction", "background_swap")),
        SegmentationModuleSchema,
        EarlyExitModuleSchema,
        UNetSchema,
        FCNSchema,
        EarlyExitCNNSchema,
        AdamSchema,
        SGDSchema,
    )
}


def schema_defaults(schema: Any) -> dict[str, Any]:
    """A schema's defaults by field, less the Hydra keys (``_target_``...) and the fields without one."""
    defaults = {}
    for f in fields(schema):
        if f.name.startswith("_"):
            continue
        value = f.default_factory() if f.default_factory is not NO_DEFAULT else f.default
        if value is not MISSING and value is not NO_DEFAULT:
            defaults[f.name] = OmegaConf.to_container(OmegaConf.structured(value)) if hasattr(value, "__dataclass_fields__") else value
    return defaults


T = TypeVar("T")


def with_defaults(cls: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``cls(*args, **kwargs)`` with every argument not given taken from its schema: the classes
    take their settings as required arguments, and this is how a script or a notebook builds one
    with the defaults a config would give it (``with_defaults(UNet, 1, 1, depth=4)``)."""
    target = "src.models.smp_net.smp_model" if getattr(cls, "__name__", "") == "smp_model" else f"{cls.__module__}.{cls.__qualname__}"
    defaults = dict(SMP_NET) if target == SMP_NET["_target_"] else schema_defaults(BY_TARGET[target])
    defaults.pop("_target_", None)
    bound = inspect.signature(cls).bind_partial(*args, **kwargs)
    given: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if bound.signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:  # a class that takes **settings
            given.update(value)
        else:
            given[name] = value
    return cls(**{**defaults, **given})


S = TypeVar("S")


def settings_of(schema: type[S], hparams: Mapping[str, Any]) -> S:
    """A class's saved hyperparameters as its schema's dataclass, so its settings are typed
    (``self.settings.image_size`` where ``self.hparams`` is an untyped mapping); the schema's
    defaults stand in for what the class does not save (``augment``)."""
    names = {f.name for f in fields(schema)}  # type: ignore[arg-type]
    return schema(**{key: value for key, value in hparams.items() if key in names})


def net_config(name: str, **overrides: Any) -> dict[str, Any]:
    """A net's config as a module takes it (``_target_`` plus every setting; ``name``: unet, fcn,
    smp or early_exit_cnn), with ``overrides``: the way to give a module built in code its net."""
    if name == "smp":
        return {**SMP_NET, **overrides}
    schema = {"unet": UNetSchema, "fcn": FCNSchema, "early_exit_cnn": EarlyExitCNNSchema}[name]
    return {"_target_": schema._target_, **schema_defaults(schema), **overrides}


def check_values(group: str, values: Mapping[str, Any], schema: Any) -> None:
    """The ranges and closed choices of ``schema``'s fields on a class's arguments (named
    ``<group>.<argument>``, e.g. ``reduction.fill``), in one error."""
    keyed = {f"{group}.{key}": value for key, value in values.items()}
    ranges = {f"{group}.{name}": bounds for name, bounds in field_ranges(schema).items()}
    choices = {f"{group}.{name}": options for name, options in field_choices(schema).items()}
    problems = _problems(keyed, ranges) + _unknown_choices(keyed, choices)
    if problems:
        raise UserInputError("; ".join(problems) + ".")


def store_schemas() -> None:
    store = ConfigStore.instance()
    for (group, name), schema in SCHEMAS.items():
        # in a group of their own (schema/...), so they are never offered as options of the group
        store.store(group=f"schema/{group}", name=name, node=schema)


# the ranges of the run's own keys, which no schema of ours holds (every other range is on its field)
RUN_RANGES = {
    "trainer.max_epochs": Range(lambda v: v is None or v == -1 or v >= 1, ">= 1 (or -1: no limit)"),
    "seed": Range(lambda v: 0 <= v < 2**32, "in [0, 2**32)"),
}


def _problems(values: Mapping[str, Any], ranges: Mapping[str, Range]) -> list[str]:
    problems = []
    for key, value in values.items():
        if key not in ranges or value is None or isinstance(value, bool):
            continue
        bounds = ranges[key]
        if not isinstance(value, (int, float)):
            problems.append(f"{key}={value!r} must be a number {bounds.meaning}")
        elif not bounds.check(value):
            problems.append(f"{key}={value:g} must be {bounds.meaning}")
    return problems


def _unknown_choices(values: Mapping[str, Any], choices_by_key: Mapping[str, tuple[str, ...]]) -> list[str]:
    problems = []
    for key, value in values.items():
        choices = choices_by_key.get(key, ())
        if choices and value is not None and value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(f"unknown {key}={value!r}; {hint}choose one of {', '.join(choices)}")
    return problems


# the config's nodes that a schema of ours builds (the schema is found by the node's _target_)
SCHEMA_NODES = ("data", "model", "model.net", "model.optimizer", "reduction", "background_swap")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """A class's own check of one closed choice (it may be built outside a config), worded as
    :func:`check_ranges` words it."""
    problems = _unknown_choices({key: value}, {key: choices})
    if problems:
        raise UserInputError(problems[0] + ".")


def check_ranges(cfg: DictConfig) -> None:
    """Every out-of-range value and every unknown closed choice of the schemas the config's nodes
    are built by (their fields' ``Range`` and ``Literal``) and of :data:`RUN_RANGES`, in one error
    that names each key (the reduction's settings only where it runs, its ``rounds`` always).
    Entry points call it before torch is imported."""
    reducing = (OmegaConf.select(cfg, "reduction.rounds", default=0) or 0) > 0
    ranges: dict[str, Range] = dict(RUN_RANGES)
    choices: dict[str, tuple[str, ...]] = {}
    for node in SCHEMA_NODES:
        schema = BY_TARGET.get(_read(cfg, f"{node}._target_"), object)
        # rounds=0 or reduction=none: the reduction's other settings do not apply
        applies = reducing or node != "reduction"
        ranges.update({f"{node}.{name}": bounds for name, bounds in field_ranges(schema).items() if applies or name == "rounds"})
        choices.update({f"{node}.{name}": options for name, options in field_choices(schema).items() if applies})
    # a key that reads a wrong value through an interpolation is skipped: the value is named
    # at the key the user wrote (every interpolated source has a range), or below
    problems = _problems({key: _read(cfg, key) for key in ranges}, ranges)
    problems += _unknown_choices({key: _read(cfg, key) for key in choices}, choices)
    if problems:
        raise UserInputError("; ".join(problems) + ".")
    for key in ranges:
        try:
            OmegaConf.select(cfg, key, default=None)
        except InterpolationResolutionError as error:
            raise UserInputError(_unresolvable(cfg, key, error)) from None


def _read(cfg: DictConfig, key: str) -> Any:
    """``key``'s value, or None where it is missing or its interpolation cannot be resolved."""
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)


def _unresolvable(cfg: DictConfig, key: str, error: InterpolationResolutionError) -> str:
    """One line naming the keys that ``key`` interpolates, with their values: the user wrote one of
    those, not ``key``."""
    parent, _, leaf = key.rpartition(".")
    written = OmegaConf.to_container(OmegaConf.select(cfg, parent) if parent else cfg, resolve=False)  # the text, ${...} unresolved
    sources = re.findall(r"\$\{([A-Za-z_][\w.]*)\}", str(written.get(leaf, "")) if isinstance(written, dict) else "")
    values = ", ".join(f"{source}={OmegaConf.select(cfg, source, default=None, throw_on_resolution_failure=False)!r}" for source in sources)
    cause = str(error).splitlines()[0]
    return f"{key} reads {values or 'another key'} and cannot use it ({cause}); give that key a value of the right type."
