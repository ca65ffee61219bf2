"""The docs' worked examples run as written: each page's titled code blocks are saved under their
titles and its bash blocks run, in a fresh directory, as a user would from the checkout's root."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, child_env
from tests.helpers.docs_pages import BLOCK
from tests.helpers.early import in_own_dir, started


def run_page(page: str, workdir: Path) -> None:
    """Save every titled block under its title, then run every bash block, in page order."""
    blocks = BLOCK.findall((ROOT / "docs" / page).read_text())
    assert any(language == "bash" for language, _, _ in blocks), f"{page} has no commands to run"
    base = child_env()
    env = {
        **base,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(workdir), str(ROOT)]),
        "PROJECT_ROOT": str(workdir),
        "WANDB_MODE": "offline",
    }
    for language, title, body in blocks:
        if title:
            (workdir / title).parent.mkdir(parents=True, exist_ok=True)
            (workdir / title).write_text(body)
        elif language == "bash":
            result = subprocess.run(["bash", "-e", "-c", body], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"{page}: {body}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


def rows(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@in_own_dir
def own_data_walkthrough(tmp_path: Path) -> None:
    """docs/own_data.md, run as written."""
    run_page("own_data.md", tmp_path)
    assert len(rows(tmp_path / "outputs" / "train" / "runs" / "my_cells" / "reduction" / "rounds.csv")) == 2
    # src.eval read the run's own data (RGB folder), with no data overrides on its command line
    assert "test/miou" in json.loads((tmp_path / "outputs" / "eval" / "my_cells" / "metrics.json").read_text())
    predicted = rows(tmp_path / "outputs" / "my_cells_predicted" / "predictions.csv")
    assert len(predicted) == 24
    assert all((row["height"], row["width"]) == ("64", "80") and 0 <= float(row["iou"]) <= 1 for row in predicted)


@pytest.mark.slow
@pytest.mark.started_early("own_data_walkthrough", serial=True)
def test_the_own_data_walkthrough_runs_as_written(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(own_data_walkthrough, tmp_path_factory).result()


@in_own_dir
def datamodule_page(tmp_path: Path) -> Path:
    """The DataModule page's commands, as written (started with the suite, on its lane)."""
    run_page("datamodule.md", tmp_path)
    return tmp_path / "outputs" / "train" / "runs" / "squares"


@pytest.mark.slow
@pytest.mark.started_early("datamodule_page", serial=True)
def test_the_minimal_datamodule_trains_with_the_reduction_as_written(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = started(datamodule_page, tmp_path_factory).result()
    assert [r["round"] for r in rows(run / "reduction" / "rounds.csv")] == ["1", "2"]
    assert (run / "metrics.json").exists()
