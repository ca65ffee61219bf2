"""Sweeps as a user runs them (``python -m src.train -m ...``): the summary a sweep writes, the
launchers and sweepers it supports, and the report of a sweep."""

from __future__ import annotations

import csv
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from src.report import report
from src.sweep_report.stats import mean_std
from src.train import train
from tests.helpers.cli import kill_all, run_cli, start_cli
from tests.helpers.compose import compose_config
from tests.helpers.early import in_own_dir, started

QUIET = ("callbacks.progress_bar=null", "logger=csv")


def sweep_dir(root: Path, task: str = "debug") -> Path:
    (path,) = (root / "outputs" / task / "multiruns").iterdir()
    return path


def summary_rows(path: Path) -> list[dict[str, str]]:
    with open(path / "sweep_summary.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_sweep_summarises_itself_and_records_a_failed_job(tmp_path: Path, data_root: Path, launcher: str) -> None:
    # percentile=150 is refused only where the reduction runs (rounds=2): one job of four fails
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    result = run_cli(
        "src.train",
        "-m",
        "debug=fast",
        f"paths.data_dir={data_root}",
        *QUIET,
        *extra,
        "reduction.percentile=50,150",
        "reduction.rounds=0,2",
        project_root=tmp_path,
    )
    rows = summary_rows(sweep_dir(tmp_path))
    assert [int(r["job"]) for r in rows] == [0, 1, 2, 3]
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and result.returncode != 0  # Hydra still reports the failure
    assert "reduction.percentile=150 reduction.rounds=2" in failed[0]["overrides"]
    assert "UserInputError" in failed[0]["error"] and "percentile" in failed[0]["error"]
    assert failed[0]["test/miou"] == ""
    for row in rows:
        if row["status"] == "ok":
            assert 0.0 <= float(row["test/miou"]) <= 1.0 and float(row["val/loss"]) > 0
            assert float(row["wall_seconds"]) > 0 and Path(row["run_dir"], "metrics.json").exists()
            assert row["best_epoch"] in {"0", "1"}


@in_own_dir
def study_preset_sweep(tmp_path: Path) -> None:
    """The study preset's sweep over a union of grids, and its report."""
    grids = "hydra.sweeper.grids=[{reduction.percentile:'50,90'},{reduction.rounds:0}]"
    data_root = tmp_path / "data"
    result = run_cli(
        "src.train",
        "experiment=reduction_study_eliret",
        "debug=fast",
        f"paths.data_dir={data_root}",
        *QUIET,
        "seed=0,1",
        grids,
        project_root=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path = sweep_dir(tmp_path)
    rows = summary_rows(path)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)  # 2 percentiles x 2 seeds + 2 baselines
    assert sum("reduction.rounds=0" in r["overrides"] for r in rows) == 2

    result = run_cli("src.report", str(path), project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = path / "report"
    text = (out / "report.md").read_text()
    grouped = section(text, "## Mean and spread over seeds")
    # one row per setting: the two percentiles and the baseline, each over 2 seeds
    assert len(table_rows(grouped)) == 3 and all(row[2] == "2" for row in table_rows(grouped))
    paired = section(text, "## Each reduction setting against the no-reduction baseline of the same seed")
    assert "**test/miou** (↑)" in paired and "**test/mse** (↓)" in paired
    assert {row[0] for row in table_rows(paired)} >= {"50", "90"}
    assert "## Convergence" in text
    for png in ("metric_vs_settings.png", "curves.png"):
        assert (out / png).stat().st_size > 1000 and f"]({png})" in text


@pytest.mark.slow
@pytest.mark.started_early("study_preset_sweep", serial=True)
def test_the_study_preset_sweeps_a_union_of_grids_and_its_report_renders(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(study_preset_sweep, tmp_path_factory).result()


@in_own_dir
def controls_preset_sweep(tmp_path: Path) -> None:
    """The controls preset's sweep, and its report."""
    grids = "hydra.sweeper.grids=[{reduction.method:'prediction,random'},{reduction.rounds:0}]"
    data_root = tmp_path / "data"
    result = run_cli(
        "src.train",
        "experiment=reduction_controls_eliret",
        "debug=fast",
        f"paths.data_dir={data_root}",
        *QUIET,
        "seed=0,1",
        "reduction.fill=impute",
        grids,
        project_root=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path = sweep_dir(tmp_path)
    rows = summary_rows(path)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    for column in ("test_shift/miou", "test_shift/clutter/miou", "test_shift/off_centre/miou", "final_round/test/miou", "final_round/test_shift/miou"):
        assert column in rows[0], column
    reduced = [r for r in rows if "reduction.rounds=0" not in r["overrides"]]
    assert all(r["final_round/test/miou"] for r in reduced)

    result = run_cli("src.report", str(path), project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    text = (path / "report" / "report.md").read_text()
    grouped = section(text, "## Mean and spread over seeds")
    assert "test_shift/miou" in grouped
    final = section(text, "## Selection inside the final round")
    assert "final_round/test/miou" in final and len(table_rows(final)) == 3
    random = section(text, "## Each setting against random removal at the same kept fraction")
    assert "**test/miou** (↑)" in random and "**test_shift/miou** (↑)" in random and "**final_round/test/miou** (↑)" in random
    # prediction is paired with random; random is not paired with itself
    assert [row[0] for row in table_rows(random.split("**test_shift/miou**")[0])] == ["prediction"]
    assert "better than random (95% interval above zero)" in random
    shifts = section(text, "## Robustness, shift by shift")
    assert "clutter" in shifts and "off_centre" in shifts and "**Against `method=random`, best checkpoint**" in shifts


@pytest.mark.slow
@pytest.mark.started_early("controls_preset_sweep", serial=True)
def test_the_controls_preset_reports_shifts_the_final_round_and_the_comparison_with_random(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(controls_preset_sweep, tmp_path_factory).result()


@in_own_dir
def optuna_search(tmp_path: Path) -> None:
    """An Optuna search of three trials, SIGKILLed in its second trial and run again with the same
    command plus ``ckpt_path=last``: it continues its study (in the sweep dir's optuna.db) to three
    trials, the killed one run again with its parameters in its own job dir."""
    search = ("hparams_search=reduction_optuna", "debug=fast", f"paths.data_dir={tmp_path / 'data'}", *QUIET, "hydra.sweeper.n_trials=3")
    killed = start_cli("src.train", *search, project_root=tmp_path)
    sweeps = tmp_path / "outputs" / "debug" / "multiruns"
    _wait_for(lambda: list(sweeps.glob("*/1/checkpoints/epoch_000.ckpt")), killed, "its second trial's first epoch")
    kill_all(killed)
    path = sweep_dir(tmp_path)
    killed_trial = yaml.safe_load((path / "1" / ".hydra" / "overrides.yaml").read_text())
    finished_log = (path / "0" / "debug.log").read_text()
    result = run_cli("src.train", *search, "ckpt_path=last", project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sweep_dir(tmp_path) == path and "continuing study reduction: 2 trials so far, 1 killed (run again), 1 new" in result.stdout + result.stderr
    study = optuna.load_study(study_name="reduction", storage=f"sqlite:///{path / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    searched = {o.split("=", 1)[0] for o in killed_trial if o.startswith("reduction.")}
    again = yaml.safe_load((path / "1" / ".hydra" / "overrides.yaml").read_text())
    assert {o for o in again if o.split("=", 1)[0] in searched} == {o for o in killed_trial if o.split("=", 1)[0] in searched}
    assert (path / "0" / "debug.log").read_text() == finished_log  # the finished trial is not started again
    rows = summary_rows(path)
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows)
    best = yaml.safe_load((path / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(float(r["val/loss"]) for r in rows), rel=1e-6)


@pytest.mark.slow
@pytest.mark.started_early("optuna_search", serial=True)
def test_a_killed_optuna_search_continues_its_trials(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(optuna_search, tmp_path_factory).result()


def test_a_single_seed_shows_its_mean_without_a_spread() -> None:
    assert mean_std(0.51234, float("nan")) == "0.5123"  # n = 1: no "± 0"
    assert mean_std(0.51234, 0.0) == "0.5123 ± 0"  # n > 1 and no spread: said
    assert mean_std(float("nan"), float("nan")) == "—"


def test_a_misspelt_preset_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MissingConfigException, match="experiment/eliret_unett"):
        compose_config("train", ["experiment=eliret_unett"], tmp_path)
    with pytest.raises(MissingConfigException, match="debug/fats"):
        compose_config("train", ["debug=fats"], tmp_path)


@pytest.mark.slow
def test_report_of_a_single_reduction_run(make_cfg, tmp_path: Path) -> None:
    from src.train import train

    cfg = make_cfg("train", "debug=fast", "logger=csv")
    train(cfg)
    # what Hydra saves in a run dir (the compose API does not)
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save({k: v for k, v in cfg.items() if k != "hydra"}, tmp_path / ".hydra" / "config.yaml")
    path = report(tmp_path)
    text = path.read_text()
    assert "## Saliency reduction, per round" in text and "## Learning curves" in text
    for png in ("rounds.png", "learning_curves.png", "examples_round_01.png", "examples_round_02.png"):
        assert (path.parent / png).exists(), png


def test_report_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    from src.config.errors import UserInputError

    with pytest.raises(UserInputError, match="not a run dir"):
        report(tmp_path)


def section(text: str, heading: str) -> str:
    start = text.index(heading) + len(heading)
    end = text.find("\n## ", start)
    return text[start : end if end > 0 else None]


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@in_own_dir
def submitit_sweep(tmp_path: Path) -> None:
    """A sweep through submitit's local launcher."""
    # the same launcher plugin as hydra/launcher=slurm, with local processes instead of sbatch
    data_root = tmp_path / "data"
    result = run_cli(
        "src.train",
        "-m",
        "hydra/launcher=submitit_local",
        "debug=fast",
        f"paths.data_dir={data_root}",
        *QUIET,
        "seed=0,1",
        project_root=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary_rows(sweep_dir(tmp_path))
    assert [r["status"] for r in rows] == ["ok", "ok"] and {r["overrides"].split()[-1] for r in rows} == {"seed=0", "seed=1"}


@pytest.mark.slow
@pytest.mark.started_early("submitit_sweep", serial=True)
def test_a_sweep_runs_through_submitit_locally(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(submitit_sweep, tmp_path_factory).result()


def test_the_slurm_launcher_runs_one_task_per_device(tmp_path: Path) -> None:
    cfg = compose_config("train", ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"], tmp_path)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 2)


# three jobs: one finishes, one is killed at its third epoch, one never starts
RESUMED_SWEEP = ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "seed=0,1,2", "reduction=none", "trainer.max_epochs=4", "torch_threads=1", *QUIET)


def _wait_for(path_glob: Callable[[], list[Path]], process: subprocess.Popen, what: str) -> None:
    deadline = time.time() + 300
    while not path_glob():
        assert process.poll() is None and time.time() < deadline, f"the sweep ended before {what}: {process.stderr.read()[-2000:] if process.stderr else ''}"
        time.sleep(0.1)


@in_own_dir
def killed_sweep_resumed(tmp_path: Path) -> dict[str, object]:
    """A joblib sweep SIGKILLed (its workers too) in its second job, then the same command plus
    ``ckpt_path=last``; beside it each job's config run uninterrupted in this process."""
    data = f"paths.data_dir={tmp_path / 'data'}"
    killed = start_cli("src.train", *RESUMED_SWEEP, data, project_root=tmp_path)
    sweeps = tmp_path / "outputs" / "train" / "multiruns"
    _wait_for(lambda: list(sweeps.glob("*/1/checkpoints/epoch_002.ckpt")), killed, "its second job's third epoch")
    kill_all(killed)
    (sweep,) = sweeps.iterdir()
    before = {p.name: p.stat().st_mtime_ns for p in (sweep / "0" / "checkpoints").iterdir()}
    assert (sweep / "0" / "metrics.json").exists() and not (sweep / "1" / "metrics.json").exists() and not (sweep / "2").exists()
    resumed = run_cli("src.train", *RESUMED_SWEEP, data, "ckpt_path=last", project_root=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return {"sweep": sweep, "before": before, "stderr": resumed.stderr, "data": data, "root": tmp_path}


@pytest.mark.slow
@pytest.mark.started_early("killed_sweep_resumed", serial=True)
def test_a_killed_sweep_resumes_with_the_same_command_and_ckpt_path_last(tmp_path_factory: pytest.TempPathFactory) -> None:
    found = started(killed_sweep_resumed, tmp_path_factory).result()
    sweep = found["sweep"]
    assert [p.name for p in (sweep.parent).iterdir()] == [sweep.name]  # continued in its own dir, no second sweep
    assert f"continuing the sweep {sweep}" in found["stderr"]
    # each job's config run uninterrupted, here (in-process training stays on the main thread)
    overrides = [o for o in RESUMED_SWEEP[4:] if not o.startswith("seed=")]
    for job, seed in enumerate((0, 1, 2)):
        uninterrupted = train(compose_config("train", [*overrides, f"seed={seed}", found["data"]], found["root"] / "uninterrupted" / str(job)))
        assert json.loads((sweep / str(job) / "metrics.json").read_text()) == uninterrupted, job
    # the finished job was read, not trained again; the killed one resumed from its last.ckpt
    assert {p.name: p.stat().st_mtime_ns for p in (sweep / "0" / "checkpoints").iterdir()} == found["before"]
    assert "finished before; reading its metrics.json" in (sweep / "0" / "train.log").read_text()
    assert "Restored all states from the checkpoint at" in (sweep / "1" / "train.log").read_text()
    assert [r["status"] for r in summary_rows(sweep)] == ["ok", "ok", "ok"] and (sweep / "sweep_finished.json").exists()
