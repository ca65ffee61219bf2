"""An early-exit sweep over seeds reports every policy, signal and exit with mean and spread."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.early_exit.policies import POLICIES
from tests.helpers.cli import run_cli
from tests.helpers.early import in_own_dir, started


@in_own_dir
def early_exit_sweep_and_report(tmp_path: Path) -> None:
    """An early-exit sweep and its report."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        "src.train",
        "-m",
        "model=early_exit_cnn",
        "data=eliret_cls",
        "seed=0,1",
        "trainer.max_epochs=2",
        "data.n_per_class=40",
        "model.net.base_width=4",
        "early_exit.timing_samples=4",
        "early_exit.max_accuracy_drop=1.0",  # every policy qualifies after two tiny epochs
        "logger=none",
        "callbacks.progress_bar=null",
        f"hydra.sweep.dir={sweep}",
        project_root=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = run_cli("src.report", str(sweep), "--metric", "test/acc", project_root=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    text = (sweep / "report" / "report.md").read_text()
    assert "## Early exit" in text and "Does saliency add to calibrated confidence?" in text
    for name in POLICIES:
        assert f"| {name} | 2/2 | " in text, name
    for signal in ("calibrated_confidence", "saliency_entropy", "coherence_prev"):
        assert f"| {signal} | " in text
    assert "| 0 | " in text and "ECE after" in text and " ± " in text


@pytest.mark.slow
@pytest.mark.started_early("early_exit_sweep_and_report", serial=True)
def test_an_early_exit_sweep_report_compares_saliency_with_calibrated_confidence(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(early_exit_sweep_and_report, tmp_path_factory).result()
