"""Config mistakes cost seconds, unwritable outputs are caught first, and any run can be re-run."""

from __future__ import annotations

import json
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from src.config.errors import UserInputError
from src.runs.rerun import expand_arguments, main_with_run_dirs
from src.storage.writable import check_writable
from src.train import train
from tests.helpers.cli import CONF, run_cli
from tests.helpers.early import in_own_dir, started


@pytest.mark.parametrize(
    ("override", "key", "problem"),
    [
        ("reduction.percentile=lots", "reduction.percentile", "could not be converted to Float"),
        ("reduction.rounds=2.5", "reduction.rounds", "could not be converted to Integer"),
        ("data.batch_size=big", "data.batch_size", "could not be converted to Integer"),
        ("data.image_size=[32]", "data.image_size", ""),
        ("model.optimizer.lr=fast", "model.optimizer.lr", "could not be converted to Float"),
        ("reduction.percentil=50", "reduction.percentil", "Could not override"),
    ],
)
def test_a_wrong_type_or_key_fails_while_composing_and_names_the_key(override: str, key: str, problem: str) -> None:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        with pytest.raises(ConfigCompositionException) as error:
            compose("train", overrides=[override])
    message = f"{error.value} {error.value.__cause__}"
    assert key in message and problem in message


@pytest.mark.slow
def test_out_of_range_values_are_all_named_before_any_data_is_read(make_cfg) -> None:
    cfg = make_cfg("train", "reduction.percentile=0", "data.batch_size=0", "data.image_size=4", "model.optimizer.lr=-1", "paths.data_dir=/nonexistent")
    with pytest.raises(UserInputError) as error:
        train(cfg)
    for key in ("reduction.percentile=0", "data.batch_size=0", "data.image_size=4", "model.optimizer.lr=-1"):
        assert key in str(error.value)


def test_an_output_dir_behind_a_file_is_refused_before_hydra_makes_it(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "a file").write_text("")
    monkeypatch.setattr(sys, "argv", ["train", f"hydra.run.dir={tmp_path / 'a file' / 'run'}"])
    with pytest.raises(SystemExit) as exit_:
        main_with_run_dirs(lambda: pytest.fail("training started"))
    assert exit_.value.code == 2
    assert "a file is a file, not a folder. Choose another hydra.run.dir" in capsys.readouterr().err


def test_an_unwritable_or_full_output_dir_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("os.access", lambda path, mode: False)  # root ignores permission bits
    with pytest.raises(UserInputError, match="is not writable: this user cannot write in"):
        check_writable(tmp_path / "run", "paths.output_dir")
    monkeypatch.undo()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(UserInputError, match="only 1 MiB free on its disk"):
        check_writable(tmp_path / "run", "paths.output_dir")


@pytest.mark.slow
def test_a_full_disk_stops_a_run_before_training(make_cfg, tmp_path: Path, monkeypatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(UserInputError, match="paths.output_dir=.*only 1 MiB free"):
        train(make_cfg("train"))
    assert not (tmp_path / "checkpoints").exists()


def test_run_dir_arguments_expand_to_the_recorded_overrides(tmp_path: Path) -> None:
    run = tmp_path / "run 1"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- seed=7\n- model=fcn\n- ckpt_path=old.ckpt\n")
    assert expand_arguments(["train", "--rerun", str(run), "trainer.max_epochs=3"]) == ["train", "seed=7", "model=fcn", "trainer.max_epochs=3"]
    with pytest.raises(UserInputError, match="has no checkpoints/last.ckpt"):
        expand_arguments(["train", f"ckpt_path={run}"])
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert expand_arguments(["train", f"ckpt_path={run}"]) == [
        "train",
        "seed=7",
        "model=fcn",
        f"ckpt_path='{run.resolve()}/checkpoints/last.ckpt'",
        f"hydra.run.dir='{run.resolve()}'",
    ]
    with pytest.raises(UserInputError, match="is not a run dir"):
        expand_arguments(["train", "--rerun", str(tmp_path)])


@in_own_dir
def rerun_in_a_new_dir(tmp_path: Path) -> None:
    """A run and its ``--rerun``, one after the other."""
    first = run_cli("src.train", "seed=11", "reduction.rounds=2", "trainer.max_epochs=2", "logger=none", "callbacks.progress_bar=null", project_root=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (original,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    again = run_cli("src.train", "--rerun", str(original), project_root=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    (rerun,) = set((tmp_path / "outputs" / "train" / "runs").iterdir()) - {original}
    assert json.loads((rerun / "metrics.json").read_text()) == json.loads((original / "metrics.json").read_text())
    for masks in (original / "reduction").rglob("masks.npz"):
        assert (rerun / masks.relative_to(original)).read_bytes() == masks.read_bytes()
    assert (rerun / ".hydra" / "overrides.yaml").read_text() == (original / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.slow
@pytest.mark.started_early("rerun_in_a_new_dir", serial=True)
def test_rerun_repeats_a_run_exactly_in_a_new_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(rerun_in_a_new_dir, tmp_path_factory).result()
