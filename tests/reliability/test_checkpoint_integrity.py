"""Every number describes the model it names: each saved checkpoint re-validates to the score
logged for its epoch, whatever the callbacks do at an epoch's end (a reduction, a new round's
fresh weights, a swap of the targets); every seed draws its own round weights; each metric key
is logged once per evaluation, and W&B's summary is ``metrics.json``."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path

import lightning as L
import pytest

from src.jobs.builders import build_datamodule
from src.storage.checkpoints import load_module, read_checkpoint
from tests.helpers.cli import run_cli
from tests.helpers.compose import compose_config
from tests.helpers.early import pooled, started
from tests.helpers.wandb_records import run_summary

HERE = Path(__file__).parent
COMMON = (
    "model=fcn",
    "data.n_per_class=40",
    "torch_threads=1",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.model_checkpoint.save_top_k=-1",  # every epoch's checkpoint is kept and checked
)
ROUNDS = ("reduction.rounds=3", "reduction.epochs_per_round=2")
REINIT = (*ROUNDS, "reduction.reinit=true", "seed=0")
KINDS = {
    "no reduction": ("reduction=none", "trainer.max_epochs=4", "logger=csv"),
    "weights kept": (*ROUNDS, "logger=csv"),
    "reinit": (*REINIT, "logger=[csv,wandb]"),
    "removed=ignore": (*ROUNDS, "reduction.removed=ignore", "reduction.reinit=true", "logger=csv"),
    # killed at the third batch of epoch 2, round 2's first epoch: after its fresh weights were drawn
    "resumed": (*REINIT, "logger=csv", "+callbacks.kill._target_=killpoints.KillAt", "+callbacks.kill.point=fit", "+callbacks.kill.epoch=2"),
    "2 ddp ranks": (
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "reduction.rounds=2",
        "reduction.epochs_per_round=2",
        "reduction.reinit=true",
        "logger=csv",
    ),
    "reinit, seed 1": ("reduction.rounds=2", "reduction.epochs_per_round=2", "reduction.reinit=true", "seed=1", "logger=csv", "test=false"),
}


def _train(root: Path, kind: str) -> Path:
    run = root / "run"
    weights = f"+callbacks.weights._target_=killpoints.RecordEpochStartWeights +callbacks.weights.output_dir={run / 'weights'}".split()
    args = (*COMMON, *KINDS[kind], *weights, f"paths.data_dir={root / 'data'}", f"hydra.run.dir={run}")
    env = {"PYTHONPATH": str(HERE)}
    result = run_cli("src.train", *args, project_root=root, env=env)
    if kind == "resumed":
        assert result.returncode == -9, f"the run was not killed: {result.stderr[-2000:]}"
        result = run_cli("src.train", f"ckpt_path={run}", "~callbacks.kill", project_root=root, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def integrity_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], dict[str, Future]]:
    """Every kind of run, two at a time (one torch thread each; the DDP run's two ranks count
    once), started with the suite on its lane."""
    jobs: dict[str, Callable[[], Path]] = {kind: partial(_train, tmp_path_factory.mktemp(re.sub(r"\W+", "_", kind)), kind) for kind in KINDS}
    return partial(pooled, jobs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future]:
    return started(integrity_runs, tmp_path_factory).result()


def _logged_val_loss(run: Path) -> dict[int, float]:
    """Each epoch's val/loss as training logged it (the first row of the epoch that has one)."""
    logged: dict[int, float] = {}
    with (run / "csv" / "metrics.csv").open() as file:
        for row in csv.DictReader(file):
            if row.get("val/loss"):
                logged.setdefault(int(row["epoch"]), float(row["val/loss"]))
    return logged


def _revalidation(run: Path, kind: str) -> Callable[[Path], float]:
    """val/loss of a checkpoint's weights on the run's validation split, in this process (the
    data module is built once per run)."""
    data = [o for o in (*COMMON, *KINDS[kind]) if o.startswith("data.")]
    datamodule = build_datamodule(compose_config("train", [*data, f"paths.data_dir={run.parent / 'data'}"], run.parent / "revalidation"))

    def revalidated(checkpoint: Path) -> float:
        trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
        (result,) = trainer.validate(load_module(checkpoint), datamodule=datamodule, verbose=False)
        return result["val/loss"]

    return revalidated


@pytest.mark.slow
@pytest.mark.started_early("integrity_runs", serial=True)
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "reinit, seed 1"])
def test_every_saved_checkpoint_revalidates_to_the_score_logged_for_its_epoch(runs: dict[str, Future], kind: str) -> None:
    run = runs[kind].result()
    logged = _logged_val_loss(run)
    checkpoints = sorted((run / "checkpoints").glob("*.ckpt"))
    names = {c.name for c in checkpoints}
    epochs = sorted(int(name[len("epoch_") :].removesuffix(".ckpt")) for name in names if name.startswith("epoch_"))
    assert "last.ckpt" in names and len(epochs) >= 4 and epochs == list(range(len(epochs))), names
    if kind != "no reduction":
        assert any(n.startswith("final_round_epoch_") for n in names), names
    revalidated = _revalidation(run, kind)
    for checkpoint in checkpoints:
        epoch = int(read_checkpoint(checkpoint)["epoch"])
        assert revalidated(checkpoint) == pytest.approx(logged[epoch], rel=1e-4, abs=1e-6), (checkpoint.name, logged)
    record = json.loads((run / "run.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val/loss"] == pytest.approx(logged[record["best_epoch"]], rel=1e-4, abs=1e-6)


@pytest.mark.slow
@pytest.mark.started_early("integrity_runs", serial=True)
def test_two_seeds_start_round_two_from_their_own_weights_and_a_resume_from_the_same(runs: dict[str, Future]) -> None:
    def round_two_start(kind: str) -> str:
        return (runs[kind].result() / "weights" / "epoch_002.sha256").read_text()

    assert round_two_start("reinit") != round_two_start("reinit, seed 1")
    assert round_two_start("resumed") == round_two_start("reinit")
    # the fresh weights are fresh: round 2 does not start from round 1's last weights
    reinit = runs["reinit"].result()
    assert round_two_start("reinit") != (reinit / "weights" / "epoch_001.sha256").read_text()


@pytest.mark.slow
@pytest.mark.started_early("integrity_runs", serial=True)
def test_each_key_is_logged_once_per_evaluation_and_the_wandb_summary_is_metrics_json(runs: dict[str, Future]) -> None:
    run = runs["reinit"].result()
    with (run / "csv" / "metrics.csv").open() as file:
        written = Counter((key, row["step"]) for row in csv.DictReader(file) for key, value in row.items() if value != "" and key not in ("step", "epoch"))
    assert [pair for pair, count in written.items() if count > 1] == []
    test_rows = sorted(key for key, _ in written if key.endswith("test/miou"))
    assert test_rows == ["final_round/test/miou", "test/miou"]
    keys = {key for key, _ in written}
    assert {"best_epoch", "best_round", "final_round/epoch", "final_round/val/loss"} <= keys
    metrics = json.loads((run / "metrics.json").read_text())
    (log,) = run.glob("wandb/offline-run-*/run-*.wandb")
    summary = run_summary(log)
    shared = sorted(set(summary) & set(metrics))
    assert {"test/miou", "val/loss", "final_round/test/miou"} <= set(shared)
    assert {k: summary[k] for k in shared} == {k: metrics[k] for k in shared}
    record = json.loads((run / "run.json").read_text())
    assert summary["best_epoch"] == record["best_epoch"] and summary["best_round"] == record["best_epoch"] // 2 + 1
