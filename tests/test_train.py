"""Training end to end through the composed config (the public entry point minus the CLI)."""

import json
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from src.config.errors import UserInputError
from src.jobs.builders import build_callbacks
from src.jobs.evaluation import evaluate
from src.storage.checkpoints import load_module
from src.train import train
from tests.helpers.cli import start_cli
from tests.helpers.early import started

ONCE = ("reduction=none",)
DEBUG = (*ONCE, "trainer.max_epochs=2", "trainer.limit_train_batches=3")


@pytest.mark.slow
def test_train_writes_checkpoints_and_metrics(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("train", *DEBUG))
    assert {"test/mse", "test/miou", "test/mdice", "test/acc", "test/miou_image", "val/loss"} <= set(metrics)
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)
    checkpoints = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and len(checkpoints) == 2
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.slow
def test_metrics_come_from_the_best_checkpoint_not_the_last_epoch(make_cfg, tmp_path: Path) -> None:
    # "best" = highest val/loss here, so it is an early epoch, not the last one
    cfg = make_cfg("train", *ONCE, "trainer.max_epochs=4", "callbacks.model_checkpoint.mode=max", "test=false")
    metrics = train(cfg)
    best = next(p for p in (tmp_path / "checkpoints").iterdir() if p.name != "last.ckpt")
    assert best.name != "epoch_003.ckpt"
    # the best checkpoint holds weights for evaluation; last.ckpt, what resumes, holds the rest
    assert "optimizer_states" not in torch.load(best, weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    score = last["callbacks"][next(k for k in last["callbacks"] if "'monitor': 'val/loss'" in k)]["best_model_score"]
    # last.ckpt still holds the last epoch, not a copy of the best (Lightning >= 2.6's save_last)
    assert last["epoch"] == 3 and "optimizer_states" in last
    assert metrics["val/loss"] == pytest.approx(float(score), rel=1e-5)


@pytest.mark.slow
def test_seeded_runs_are_reproducible_on_cpu(make_cfg) -> None:
    first = train(make_cfg("train", *DEBUG, "seed=7"))
    second = train(make_cfg("train", *DEBUG, "seed=7"))
    other = train(make_cfg("train", *DEBUG, "seed=8"))
    assert first == second
    assert first != other


@pytest.mark.slow
def test_eval_rebuilds_the_model_from_the_checkpoint_alone(make_cfg, tmp_path: Path) -> None:
    trained = train(make_cfg("train", *DEBUG, "model=fcn"))
    best = next(p for p in (tmp_path / "checkpoints").iterdir() if p.name != "last.ckpt")
    module = load_module(best)
    assert type(module.net).__name__ == "FCN"
    evaluated = evaluate(make_cfg("eval", f"ckpt_path={best}"))
    assert evaluated == pytest.approx({k: v for k, v in trained.items() if k.startswith("test/")}, rel=1e-5)


@pytest.mark.slow
def test_resume_from_last_checkpoint_continues_training(make_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train(make_cfg("train", *DEBUG))
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    caplog.clear()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        train(make_cfg("train", *ONCE, "trainer.max_epochs=3", "trainer.limit_train_batches=3", f"ckpt_path={last}"))
    assert torch.load(last, weights_only=True)["epoch"] == 2
    # one restore message (the fit's), not one per evaluation of a checkpoint; no warning that
    # the run's own checkpoints/ is not empty
    assert [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage() and "Restor" in r.getMessage()] == [
        f"Restoring states from the checkpoint path at {last}",
        f"Restored all states from the checkpoint at {last}",
    ]
    assert not [w for w in warned if "exists and is not empty" in str(w.message)]


@pytest.mark.slow
def test_last_checkpoint_can_be_written_every_n_epochs(make_cfg, tmp_path: Path) -> None:
    train(make_cfg("train", *ONCE, "trainer.max_epochs=3", "trainer.limit_train_batches=2", "callbacks.last_checkpoint.every_n_epochs=2"))
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1  # epochs 0-2: written after 1 only


# min_delta 1e9: no epoch after the first counts as an improvement, so the fit stops after epoch 1
EARLY_STOP = "callbacks.early_stopping={_target_: lightning.pytorch.callbacks.EarlyStopping, monitor: val/loss, patience: 1, min_delta: 1e9}"


@pytest.mark.slow
def test_early_stopping_ends_the_fit_and_tests_its_best_checkpoint(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("train", *ONCE, "trainer.max_epochs=5", "trainer.limit_train_batches=2", EARLY_STOP))
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    best = next(p for p in (tmp_path / "checkpoints").iterdir() if p.name != "last.ckpt")
    assert best.name in {"epoch_000.ckpt", "epoch_001.ckpt"} and "test/miou" in metrics


def test_early_stopping_is_refused_between_reduction_rounds(make_cfg) -> None:
    with pytest.raises(UserInputError, match=r"early_stopping.*reduction.rounds=2.*maps_from"):
        build_callbacks(make_cfg("train", "reduction.rounds=2", EARLY_STOP))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["unet", "fcn", "smp"])
def test_every_model_trains_on_eliret(make_cfg, model: str) -> None:
    metrics = train(make_cfg("train", *ONCE, f"model={model}", "trainer.max_epochs=1", "trainer.limit_train_batches=2"))
    assert 0.0 <= metrics["test/miou"] <= 1.0


@pytest.mark.slow
def test_wandb_runs_offline_and_each_run_is_finished(make_cfg, tmp_path: Path, monkeypatch) -> None:
    import wandb

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    train(make_cfg("train", *DEBUG, "logger=wandb"))
    assert wandb.run is None
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1


def start_unet_and_fcn(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], dict[str, float]]:
    """Both runs, side by side from the CLI with one torch thread each (more do not make the U-Net
    faster at 32 px), at 20 epochs: the default budget (150) is `make results`' eliret table; the
    conftest starts them with the suite."""
    root = tmp_path_factory.mktemp("unet_beats_fcn")

    def start(model: str) -> subprocess.Popen:
        run = root / model
        # each its own data dir: two runs generating one dir side by side would race (it takes well under a second)
        overrides = (*ONCE, "trainer.max_epochs=20", f"paths.data_dir={run / 'data'}", "torch_threads=1", "logger=none", f"hydra.run.dir={run}")
        return start_cli("src.train", *overrides, "model=unet" if model == "unet" else "experiment=eliret_fcn", project_root=root)

    runs = {model: start(model) for model in ("unet", "fcn")}

    def test_mse() -> dict[str, float]:
        for model, process in runs.items():
            _, err = process.communicate(timeout=900)
            assert process.returncode == 0, f"{model}: {err[-3000:]}"
        return {model: json.loads((root / model / "metrics.json").read_text())["test/mse"] for model in runs}

    return test_mse


@pytest.mark.slow
@pytest.mark.started_early("start_unet_and_fcn", serial=True, first=True)
def test_unet_beats_fcn_on_eliret_within_20_epochs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The original study's headline eliret result: U-Net's test MSE is well below the FCN's."""
    mse = started(start_unet_and_fcn, tmp_path_factory).result()
    assert mse["unet"] < 0.5 * mse["fcn"]


def test_results_are_written_with_the_usual_permissions(tmp_path: Path) -> None:
    import os

    from src.storage.atomic import write_bytes_atomic

    write_bytes_atomic(tmp_path / "x.json", b"{}")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.slow
def test_a_run_records_what_it_needs_to_be_rerun(make_cfg, tmp_path: Path) -> None:
    train(make_cfg("train", *DEBUG))
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert record["versions"]["lightning"] and record["python"].count(".") == 2
    assert record["git"] is None or (len(record["git"]["commit"]) == 40 and isinstance(record["git"]["dirty"], bool))
    assert record["command"] and record["best_epoch"] == 1 and record["best_checkpoint"].endswith(".ckpt")
