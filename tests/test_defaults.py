"""One place for every default: the structured-config schemas (src/config/schemas/). Each group's
option is composed through Hydra and checked against its class's signature, so a second default
(in the class or in the YAML) cannot come back unnoticed."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import yaml
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from src.config.schemas import BY_TARGET, SCHEMAS, with_defaults
from src.config.schemas.data import EliretDataSchema, ShortcutDataSchema
from src.config.schemas.models import UNetSchema
from src.data.eliret_generator import EliretSpec
from src.data.shortcut_generator import ShortcutSpec
from src.models.unet import UNet
from tests.helpers.compose import compose_config

ROOT = Path(__file__).resolve().parents[1]
# what the builders give a class from the data module (src/jobs/builders.py), not from its config
FROM_THE_DATA = {
    "src.models.segmentation.SegmentationModule": {
        "task",
        "in_channels",
        "out_channels",
        "input_mean",
        "input_std",
        "challenge_metrics",
        "ignore_index",
        "eval_window",
    },
    "src.models.early_exit.EarlyExitClassifier": {"in_channels", "num_classes", "input_mean", "input_std"},
    "net": {"in_channels", "out_channels", "num_classes"},
}
OPTIONS = sorted((group, name) for group, name in SCHEMAS if group in ("data", "model", "reduction"))


def composed(group: str, name: str, tmp_path: Path) -> DictConfig:
    overrides = [f"{group}={name}"] + (["model=early_exit_cnn"] if name.endswith("_cls") else [])
    if group == "model" and name == "early_exit_cnn":
        overrides.append("data=eliret_cls")
    return compose_config("train", overrides, tmp_path)


def nodes(cfg: DictConfig, group: str) -> list[tuple[str, DictConfig]]:
    node = cfg[group]
    return [(group, node), *([("net", node.net)] if group == "model" else [])]


def parameters(target: str) -> dict[str, inspect.Parameter]:
    """The class's arguments; a class that takes ``**settings`` takes its schema's fields, each
    required (its constructor refuses a missing one)."""
    signature = inspect.signature(get_method(target))
    if target in BY_TARGET and any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return {f.name: inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY) for f in dataclasses.fields(BY_TARGET[target]) if not f.name.startswith("_")}
    return {n: p for n, p in signature.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@pytest.mark.parametrize(("group", "name"), OPTIONS, ids=[f"{g}={n}" for g, n in OPTIONS])
def test_each_option_gives_its_class_every_argument_and_the_class_repeats_no_default(group: str, name: str, tmp_path: Path) -> None:
    cfg = composed(group, name, tmp_path)
    for label, node in nodes(cfg, group):
        params = parameters(node._target_)
        keys = {k for k in node if not str(k).startswith("_")}
        supplied = FROM_THE_DATA.get(node._target_, FROM_THE_DATA["net"] if label == "net" else set())
        assert keys <= params.keys(), f"{name}: config keys the class does not take: {keys - params.keys()}"
        assert params.keys() - keys <= supplied, f"{name}: arguments no config gives: {params.keys() - keys - supplied}"
        repeated = sorted(k for k in keys if params[k].default is not inspect.Parameter.empty)
        assert repeated == [], f"{node._target_} has its own default for {repeated}; the schema holds it"


@pytest.mark.parametrize(("group", "name"), OPTIONS, ids=[f"{g}={n}" for g, n in OPTIONS])
def test_the_yaml_option_only_selects_and_wires(group: str, name: str) -> None:
    """A YAML option sets no literal value: only interpolations (paths, the seed, the augment group)."""
    option = yaml.safe_load((ROOT / "src" / "conf" / group / f"{name}.yaml").read_text()) or {}
    literals = {k: v for k, v in option.items() if k != "defaults" and not (isinstance(v, str) and v.startswith("${"))}
    assert literals == {}


def test_a_class_built_in_code_gets_the_configs_defaults(tmp_path: Path) -> None:
    cfg = composed("reduction", "saliency", tmp_path)
    settings = OmegaConf.to_container(cfg.reduction, resolve=True)
    settings.pop("_target_")
    reducer = with_defaults(
        get_method(cfg.reduction._target_), seed=settings["seed"], epochs_per_round=settings["epochs_per_round"], output_dir=settings["output_dir"]
    )
    assert (reducer.rounds, reducer.settings.percentile, reducer.settings.fill, reducer.settings.keep) == (
        settings["rounds"],
        settings["percentile"],
        settings["fill"],
        settings["keep"],
    )
    with pytest.raises(TypeError, match="SaliencyReduction needs seed"):
        get_method(cfg.reduction._target_)(**{k: v for k, v in settings.items() if k != "seed"})
    net = with_defaults(UNet, 1, 1)
    assert len(net.ups) == cfg.model.net.depth
    assert next(net.encoders[0].parameters()).shape[0] == cfg.model.net.base_width


def test_the_architecture_pages_example_builds_a_module_with_the_configs_defaults() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the page's own example, run as written
    assert len(scope["net"].ups) == 4 and scope["module"].hparams.net["depth"] == UNetSchema.depth


# a generator spec's field -> the data schema's setting it comes from
SPEC_FIELDS = {"size": "image_size", "seed": "generator_seed"}


@pytest.mark.parametrize(("spec", "schema"), [(EliretSpec, EliretDataSchema), (ShortcutSpec, ShortcutDataSchema)], ids=["eliret", "shortcut"])
def test_a_generator_spec_takes_every_default_from_its_data_schema(spec, schema) -> None:
    """The generated sets' specs (built in code by tests and the bench) default to the schema's
    values, read from it: a literal default there would be a second place."""
    for field in dataclasses.fields(spec):
        assert field.default == getattr(schema, SPEC_FIELDS.get(field.name, field.name)), field.name
    source = inspect.getsource(spec)
    assert not re.search(r"^\s+\w+: \w+ = [-0-9\"']", source, re.MULTILINE), "a literal default in the spec"
