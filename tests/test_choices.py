"""Closed choices are types: each is a ``Literal`` on its schema field, and a misspelt value is
refused before the run, with the list and the closest choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.config.errors import UserInputError
from src.config.schemas import SCHEMAS, check_ranges, field_choices
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
