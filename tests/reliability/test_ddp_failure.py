"""Under DDP one failing rank ends the whole job promptly; nobody waits for its masks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.early import in_own_dir, started

HERE = Path(__file__).parent


@in_own_dir
def failing_rank_run(path: Path) -> subprocess.CompletedProcess:
    """Two gloo ranks, rank 1 failing in the relevance pass (started with the suite, on its lane)."""
    return run_cli(
        "src.train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "reduction.rounds=2",
        "reduction.epochs_per_round=1",
        "trainer.limit_train_batches=2",
        "test=false",
        "logger=none",
        "callbacks.progress_bar=null",
        "+callbacks.fail._target_=killpoints.RaiseOnRank",
        "+callbacks.fail.rank=1",
        project_root=path,
        env={"PYTHONPATH": str(HERE)},
        timeout=400,
    )


@pytest.mark.slow
@pytest.mark.started_early("failing_rank_run", serial=True)
def test_a_rank_failing_in_the_relevance_pass_ends_every_rank(tmp_path_factory: pytest.TempPathFactory) -> None:
    result = started(failing_rank_run, tmp_path_factory).result()
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "injected failure on rank 1" in output
    assert "rank(s) 1 failed in the relevance pass" in output
    # the ranks agreed to stop: none waited on a collective until its timeout (how long that
    # takes is `make bench`'s business, not a test's)
    assert "timed out" not in output.lower() and "timeout" not in output.lower()
