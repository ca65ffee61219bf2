"""Closed choices are types: each is a ``Literal`` on its schema field, and a misspelt value is
refused before the run, with the list and the closest choice; a range sits on its field too."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.config.errors import UserInputError
from src.config.schemas import SCHEMAS, check_ranges, field_choices
from src.config.schemas.constraints import field_ranges
from src.config.schemas.models import LOSS_NAMES, EarlyExitCNNSchema, UNetSchema
from src.models.losses import LOSSES
from tests.helpers.compose import compose_config

# (the option that selects the schema, the key, its choices): every closed choice of every schema
CASES = [
    *((f"{group}={name}", f"{group}.{key}", options) for (group, name), schema in SCHEMAS.items() for key, options in field_choices(schema).items()),
    *(("model=unet", f"model.net.{key}", options) for key, options in field_choices(UNetSchema).items()),
    *(("model=early_exit_cnn", f"model.net.{key}", options) for key, options in field_choices(EarlyExitCNNSchema).items()),
]


def test_every_choice_the_issue_names_is_a_type() -> None:
    keys = {key for _, key, _ in CASES}
    named = {"reduction.method", "reduction.fill", "reduction.keep", "reduction.removed", "model.net.upsampling", "model.net.head", "model.loss"}
    named |= {"data.split", "data.cue", "data.cue_place", "data.test_split", "data.label_resize", "data.target"}
    assert named <= keys


@pytest.mark.parametrize(("option", "key", "options"), CASES, ids=[f"{option}:{key}" for option, key, _ in CASES])
def test_a_misspelt_choice_is_refused_with_the_list(option: str, key: str, options: tuple[str, ...], tmp_path: Path) -> None:
    wrong = f"{options[-1]}x"
    cfg = compose_config("train", [option, f"{key}={wrong}", "reduction.rounds=1"], tmp_path)
    with pytest.raises(UserInputError) as refused:
        check_ranges(cfg)
    assert f"unknown {key}='{wrong}'; did you mean {options[-1]}? choose one of {', '.join(options)}" in str(refused.value)


def test_the_losses_of_every_output_mode_are_the_schemas_loss_choices() -> None:
    assert {name for names in LOSSES.values() for name in names} == set(LOSS_NAMES)


# (the option that selects the schema, the key, its range): every ranged field of every schema
RANGED = [
    *(
        (f"{group}={name}", f"{group.replace('/', '.')}.{key}", bounds)
        for (group, name), schema in SCHEMAS.items()
        for key, bounds in field_ranges(schema).items()
    ),
]


def test_every_range_sits_on_a_schema_field() -> None:
    keys = {key for _, key, _ in RANGED}
    assert {"reduction.percentile", "data.image_size", "data.batch_size", "model.optimizer.lr", "model.rrr_weight", "background_swap.share"} <= keys


@pytest.mark.parametrize(("option", "key", "bounds"), RANGED, ids=[f"{option}:{key}" for option, key, _ in RANGED])
def test_a_value_out_of_its_fields_range_is_refused_with_the_range(option: str, key: str, bounds, tmp_path: Path) -> None:
    rounds = [] if key == "reduction.rounds" else ["reduction.rounds=1"]
    cfg = compose_config("train", [option, f"{key}=-1000000000", *rounds], tmp_path)
    with pytest.raises(UserInputError) as refused:
        check_ranges(cfg)
    assert f"{key}=-1e+09 must be {bounds.meaning}" in str(refused.value)
