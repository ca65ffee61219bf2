"""Reading what a run has written so far, and the two-rank reduction round several tests compare."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from src.reduction.round_outputs import read_masks
from tests.helpers.cli import run_cli


def logged_epochs(run: Path) -> int:
    """Epochs a run has logged so far (rows of its csv/metrics.csv with a val/loss)."""
    metrics = run / "csv" / "metrics.csv"
    if not metrics.is_file():
        return 0
    with metrics.open() as file:
        return sum(1 for row in csv.DictReader(file) if row.get("val/loss"))


def ddp_reduction_round(project_root: Path, *overrides: str) -> tuple[np.ndarray, str, str]:
    """One reduction round trained by two gloo processes (``src.train trainer=ddp``): the masks
    it saved, their sha256 and the run's output (where each rank logs the masks' hash)."""
    result = run_cli(
        "src.train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "reduction.rounds=1",
        "reduction.epochs_per_round=1",
        "reduction.batch_size=16",
        "trainer.limit_train_batches=2",
        "test=false",
        "logger=none",
        "callbacks.progress_bar=null",
        *overrides,
        project_root=project_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (project_root / "outputs" / "train" / "runs").iterdir()
    saved = read_masks(run / "reduction" / "round_01" / "masks.npz")
    return saved, hashlib.sha256(saved.tobytes()).hexdigest(), result.stdout + result.stderr
