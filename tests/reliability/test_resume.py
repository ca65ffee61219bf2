"""A run SIGKILLed at any point and resumed ends bit for bit where the uninterrupted run ends."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli, start_cli
from tests.helpers.early import pooled, started
from tests.helpers.runs import logged_epochs

HERE = Path(__file__).parent
# 3 rounds of 2 epochs, dropout (fcn), shift augmentation and smoothgrad's noise: every random
# stream the reduction run draws from
RUN = (
    "seed=3",
    "model=fcn",
    "augment=shift",
    "reduction.rounds=3",
    "reduction.epochs_per_round=2",
    "reduction.method=smoothgrad",
    "reduction.smoothgrad_samples=2",
    "data.n_per_class=40",
    "torch_threads=1",
    "test=true",
    "logger=csv",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
)
TIMING = {"fit_seconds", "relevance_seconds", "fill_seconds", "swap_seconds"}


def _rounds(run: Path) -> list[dict[str, str]]:
    with (run / "reduction" / "rounds.csv").open() as file:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(file)]


def _train(root: Path, run: Path, *args: str) -> Path:
    result = run_cli("src.train", *RUN, f"paths.data_dir={root / 'data'}", f"hydra.run.dir={run}", *args, project_root=root, env={"PYTHONPATH": str(HERE)})
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def _killed_then_resumed(root: Path, point: str, epoch: int) -> Path:
    run = root / f"killed at {point}"  # a space in the path, on purpose
    killed = run_cli(
        "src.train",
        *RUN,
        f"paths.data_dir={root / 'data'}",
        f"hydra.run.dir='{run}'",
        "+callbacks.kill._target_=killpoints.KillAt",
        f"+callbacks.kill.point={point}",
        f"+callbacks.kill.epoch={epoch}",
        project_root=root,
        env={"PYTHONPATH": str(HERE)},
    )
    assert killed.returncode == -9, f"{point}: the run was not killed: {killed.stderr[-2000:]}"
    assert not (run / "metrics.json").exists()
    resumed = run_cli("src.train", f"ckpt_path={run}", "~callbacks.kill", project_root=root, env={"PYTHONPATH": str(HERE)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return run


def _readme_resume_command() -> list[str]:
    """The README's resume line, `python -m src.train ckpt_path=last ...`, as its words."""
    line = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("**Resume**"))
    (command,) = re.findall(r"`(python -m src\.train [^`]*)`", line)
    words = command.split()
    assert words[:3] == ["python", "-m", "src.train"] and words[-1] == "...", command
    return words[3:-1]


def _killed_from_outside_then_resumed_by_the_readmes_line(root: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """SIGKILLed from outside once it has logged 3 epochs, then the README's line with the same overrides."""
    args = (*RUN, f"paths.data_dir={root / 'data'}")
    runs = root / "outputs" / "train" / "runs"
    killed = start_cli("src.train", *args, project_root=root)
    deadline = time.time() + 600
    while not any(logged_epochs(run) >= 3 for run in runs.glob("*")):
        assert killed.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.2)
    killed.kill()
    killed.wait()
    (run,) = runs.iterdir()
    assert not (run / "metrics.json").exists()
    return run, run_cli("src.train", *_readme_resume_command(), *args, project_root=root)


POINTS = [("fit", 3), ("relevance", 3), ("checkpoint", 3)]  # all in round 2


def resume_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], dict[str, Future]]:
    """Every run of the module, two at a time (each has one torch thread), started with the suite
    on its lane: the uninterrupted run, runs killed at each point and resumed, and the README's
    resume; each test reads its own."""
    root = {name: tmp_path_factory.mktemp(name) for name in ("uninterrupted", "killed", "background", "readme")}
    jobs: dict[str, Callable[[], object]] = {"uninterrupted": partial(_train, root["uninterrupted"], root["uninterrupted"] / "run")}
    jobs |= {point: partial(_killed_then_resumed, root["killed"], point, epoch) for point, epoch in POINTS}
    jobs["background"] = partial(_killed_then_resumed, root["background"], "background", 3)
    jobs["readme"] = partial(_killed_from_outside_then_resumed_by_the_readmes_line, root["readme"])
    return partial(pooled, jobs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future]:
    return started(resume_runs, tmp_path_factory).result()


@pytest.mark.slow
@pytest.mark.started_early("resume_runs", serial=True)
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_result(runs: dict[str, Future]) -> None:
    full = runs["uninterrupted"].result()
    for point, _ in POINTS:
        run = runs[point].result()
        assert json.loads((run / "metrics.json").read_text()) == json.loads((full / "metrics.json").read_text()), point
        assert _rounds(run) == _rounds(full), point
        for round_dir in sorted((full / "reduction").glob("round_*")):
            assert (run / "reduction" / round_dir.name / "masks.npz").read_bytes() == (round_dir / "masks.npz").read_bytes(), (point, round_dir.name)
        # one run dir: the resume extended the original's logs and recorded itself
        record = json.loads((run / "run.json").read_text())
        assert len(record["resumed"]) == 1 and "killpoints" in record["command"]
        epochs = [row["epoch"] for row in csv.DictReader((run / "csv" / "metrics.csv").open()) if row.get("val/loss")]
        assert epochs == [row["epoch"] for row in csv.DictReader((full / "csv" / "metrics.csv").open()) if row.get("val/loss")]
        assert not list((run / "checkpoints").glob(".*.tmp")), "a killed checkpoint write left its temporary file"


@pytest.mark.slow
@pytest.mark.started_early("resume_runs", serial=True)
def test_a_run_killed_while_its_checkpoint_is_written_in_the_background_resumes_to_the_same_result(runs: dict[str, Future]) -> None:
    """The writer dies mid-write of epoch 3's checkpoints (round 1's last epoch) while training
    is already in epoch 4 on round 2's reduced set: the resume starts from epoch 2's checkpoint."""
    run, full = runs["background"].result(), runs["uninterrupted"].result()
    assert json.loads((run / "metrics.json").read_text()) == json.loads((full / "metrics.json").read_text())
    assert _rounds(run) == _rounds(full)
    record = json.loads((run / "run.json").read_text())
    assert record["resumed"][0]["from_checkpoint"].endswith("last.ckpt")
    assert not list((run / "checkpoints").glob(".*.tmp")), "a killed checkpoint write left its temporary file"


@pytest.mark.slow
@pytest.mark.started_early("resume_runs", serial=True)
def test_the_readmes_resume_line_resumes_a_killed_run_in_its_own_dir(runs: dict[str, Future]) -> None:
    """SIGKILLed from outside once it has logged 3 epochs, then the README's line with the same
    overrides: the run goes on in its own dir and ends with the uninterrupted run's results."""
    run, resumed = runs["readme"].result()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [p.name for p in run.parent.iterdir()] == [run.name], "the resume made a new run dir"
    assert f"ckpt_path=last: resuming {run}" in resumed.stderr
    reference = runs["uninterrupted"].result()
    assert json.loads((run / "metrics.json").read_text()) == json.loads((reference / "metrics.json").read_text())
    assert _rounds(run) == _rounds(reference)
    assert len(json.loads((run / "run.json").read_text())["resumed"]) == 1
    # a host with Slurm installed: Lightning's "srun is available" hint is not in a local run's output
    assert "`srun` command is available" not in resumed.stdout + resumed.stderr
