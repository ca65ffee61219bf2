"""What a newcomer meets on the first day (issue "first day"): the thread default, resuming by
the same overrides, a wrong type named at its key, the headline's round, a report with nothing
swept, a rounds table that fits a terminal."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from rich.console import Console

from src.config.errors import UserInputError
from src.config.schemas import check_ranges
from src.reduction.round_outputs import TABLE_WIDTH, rounds_table
from src.runs import rerun, threads
from src.storage.results import metrics_table
from src.sweep_report.markdown import sweep_report
from src.train import train
from tests.helpers.compose import compose_config


def test_the_thread_default_takes_the_idle_usable_cores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    quota_of, idle_of = threads.cpu_quota, threads.idle_cores
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    # a core counts once it is three quarters idle: 1.5 idle cores are 1 thread, 1.8 are 2
    for idle, chosen in ((4.0, 4), (3.1, 3), (1.8, 2), (1.5, 1), (1.0, 1), (0.2, 1)):
        monkeypatch.setattr(threads, "idle_cores", lambda cores, seconds=0.2, idle=idle: idle)
        choice = threads.choose_threads(None)
        assert choice.threads == chosen and f"{idle:.1f} of the 4 usable cores idle" in choice.reason
    assert threads.choose_threads(3) == threads.ThreadChoice(3, "torch_threads")  # asked for: taken as it is
    monkeypatch.setattr(threads, "idle_cores", lambda cores, seconds=0.2: 4.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # a launcher's share caps the idle cores, never raises them
    assert threads.choose_threads(None).threads == 2
    monkeypatch.setattr(threads, "idle_cores", lambda cores, seconds=0.2: 1.0)
    assert threads.choose_threads(None).threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # nothing to choose: the machine is not even sampled
    monkeypatch.setattr(threads, "idle_cores", lambda cores, seconds=0.2: pytest.fail("sampled"))
    assert threads.choose_threads(None).threads == 1
    # a cgroup v2 quota (docker --cpus=1.5) caps them too
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")
    assert quota_of(quota) == 1.5 and quota_of(tmp_path / "absent") is None
    quota.write_text("max 100000\n")
    assert quota_of(quota) is None
    assert 0 <= idle_of([0], seconds=0.05) <= 1  # the real sampler: one core's idle share


def _fake_run(log_dir: Path, name: str, overrides: list[str], finished: bool = False) -> Path:
    run = log_dir / "train" / "runs" / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"config_name": "train"}}}))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    if finished:
        (run / "metrics.json").write_text("{}")
    return run


def test_resuming_by_the_same_overrides_ignores_how_the_job_runs(tmp_path: Path) -> None:
    where = f"paths.log_dir={tmp_path}"
    started = _fake_run(tmp_path, "a", ["seed=1", "model=fcn", where])
    _fake_run(tmp_path, "b", ["seed=1", "model=fcn", "torch_threads=2", where], finished=True)  # finished: never resumed
    _fake_run(tmp_path, "c", ["seed=2", "model=fcn", where])  # computes something else
    # started without torch_threads, resumed with it (and with another progress bar and logger)
    args = ["src.train", "seed=1", "model=fcn", "ckpt_path=last", "torch_threads=1", "logger=wandb", f"paths.log_dir={tmp_path}"]
    expanded = rerun.expand_arguments(args)
    assert f"hydra.run.dir='{started.resolve()}'" in expanded and "torch_threads=1" in expanded
    assert rerun.what_it_computes(["seed=1", "callbacks.progress_bar=null", "hydra/launcher=joblib", "ckpt_path=last"]) == ["seed=1"]


def test_what_a_command_computes_keeps_added_deleted_and_quoted_keys_in_their_written_order() -> None:
    written = ["+trainer.min_epochs=2", "~callbacks.kill", "seed=3,1", "data.data_dir='/a b/c=d'", "model=fcn"]
    execution = ["~torch_threads", "+logger=wandb", "hydra.launcher.n_jobs=2", "hydra.run.dir=x", "ckpt_path=last"]
    assert rerun.what_it_computes([*written[:2], *execution, *written[2:]]) == written
    # another order is another sweep: its jobs are numbered in the order the values are written
    assert rerun.what_it_computes(["seed=1,3", "model=fcn"]) != rerun.what_it_computes(["model=fcn", "seed=1,3"])


def test_a_sweep_resumes_only_an_unfinished_sweep_of_the_same_overrides(tmp_path: Path) -> None:
    def sweep(name: str, task: list[str], finished: bool) -> Path:
        folder = tmp_path / "train" / "multiruns" / name
        folder.mkdir(parents=True)
        record = {"hydra": {"job": {"config_name": "train"}, "overrides": {"task": task, "hydra": ["hydra.mode=MULTIRUN", "hydra/launcher=joblib"]}}}
        (folder / "multirun.yaml").write_text(yaml.safe_dump(record))
        if finished:
            (folder / rerun.SWEEP_FINISHED).write_text("{}")
        return folder

    where = f"paths.log_dir={tmp_path}"
    killed = sweep("1", ["seed=0,1", "torch_threads=1", where], finished=False)
    sweep("2", ["seed=0,1", where], finished=True)
    sweep("3", ["seed=0,1,2", where], finished=False)
    expanded = rerun.expand_arguments(["src.train", "-m", "seed=0,1", "ckpt_path=last", f"paths.log_dir={tmp_path}"])
    assert expanded[-1] == f"hydra.sweep.dir='{killed}'"
    # nothing unfinished of these overrides: a new sweep, as without ckpt_path=last
    fresh = ["src.train", "-m", "seed=5", "ckpt_path=last", f"paths.log_dir={tmp_path}"]
    assert rerun.expand_arguments(fresh) == fresh
    # the same keys in another order number the jobs otherwise: another sweep
    grid = sweep("4", ["seed=0,1", "model=unet,fcn", where], finished=False)
    assert rerun.expand_arguments(["src.train", "-m", "seed=0,1", "model=unet,fcn", "ckpt_path=last", where])[-1] == f"hydra.sweep.dir='{grid}'"
    reordered = ["src.train", "-m", "model=unet,fcn", "seed=0,1", "ckpt_path=last", where]
    assert rerun.expand_arguments(reordered) == reordered
    # a sweep still running (its process holds the lock) is not joined
    with open(grid / rerun.SWEEP_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(UserInputError, match="is still running"):
            rerun.expand_arguments(["src.train", "-m", "seed=0,1", "model=unet,fcn", "ckpt_path=last", where])
    # a finished sweep with a failed job is continued (the failed job runs again)
    (killed.parent / "2" / "0").mkdir(parents=True)
    (killed.parent / "2" / "0" / "job.json").write_text(json.dumps({"status": "failed"}))
    assert killed.parent / "2" in rerun.unfinished_sweeps(tmp_path, "train", ["seed=0,1", where])


def test_a_preset_that_sweeps_is_resumed_as_a_sweep() -> None:
    # the study presets set hydra.mode MULTIRUN themselves: no -m on their command line
    assert rerun._fresh_sweep_dir(["experiment=reduction_benchmark_baselines", "ckpt_path=last"])
    assert rerun._fresh_sweep_dir(["hparams_search=reduction_optuna", "ckpt_path=last"])
    assert not rerun._fresh_sweep_dir(["seed=1", "ckpt_path=last"])
    assert not rerun._fresh_sweep_dir(["-m", "seed=1,2", "hydra.sweep.dir=somewhere", "ckpt_path=last"])


def test_a_wrong_type_is_named_at_the_key_the_user_wrote(tmp_path: Path) -> None:
    cfg = compose_config("train", ["trainer.max_epochs=abc"], tmp_path)  # reduction.epochs_per_round reads it
    with pytest.raises(UserInputError) as refused:
        check_ranges(cfg)
    assert str(refused.value) == "trainer.max_epochs='abc' must be a number >= 1 (or -1: no limit)."
    # a key outside the ranges read through an interpolation: named with its value, in one line
    reduction = {"_target_": "src.reduction.callback.SaliencyReduction", "rounds": 2, "epochs_per_round": "${epochs_per_round:${x},${.rounds}}"}
    odd = OmegaConf.create({"x": "abc", "reduction": reduction})
    with pytest.raises(UserInputError, match=r"^reduction.epochs_per_round reads x='abc' and cannot use it \(.*\); give that key") as refused:
        check_ranges(odd)
    assert "\n" not in str(refused.value)


def test_the_headline_names_its_round_and_shows_the_reduced_model_beside_it(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train", "reduction.rounds=2", "reduction.epochs_per_round=1", "trainer.max_epochs=3", "data.batch_size=32")
    metrics = train(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    # one epoch per round: round = epoch + 1; the last round trained is the final one
    assert saved["best_round"] == saved["best_epoch"] + 1 and saved["final_round/round"] == saved["final_round/epoch"] + 1 == 2
    console = Console(width=200, record=True)
    headers = ("best checkpoint (round 1)", "final round's best (round 3)")
    console.print(metrics_table({"test/miou": 0.9, "final_round/test/miou": 0.8, "best_round": 1, "final_round/round": 3}, None, headers))
    text = console.export_text()
    assert all(header in text for header in headers)
    row = next(line for line in text.splitlines() if "test/miou" in line)
    assert row.index("0.9") < row.index("0.8")  # one row: before and after the reduction side by side
    # the run's own final table, every metric it logged, within the console width the tables keep
    console = Console(width=200, record=True)
    console.print(metrics_table(metrics, None, headers))
    assert max(len(line.rstrip()) for line in console.export_text().splitlines()) <= TABLE_WIDTH


def test_the_rounds_table_fits_100_characters() -> None:
    row = {
        "round": 7,
        "kept_fraction": 0.123456,
        "val/loss": 0.123456,
        "val/mse": 0.123456,
        "val/miou": 0.9,
        "val/mdice": 0.9,
        "mean_spatial_entropy": 0.9,
        "mean_moment_of_inertia": 0.9,
        "oracle_keep_iou": 0.9,
        "cue_share": 0.5,
        "fit_seconds": 1234.5,
        "relevance_seconds": 12.25,
        "fill_seconds": 1.5,
    }
    console = Console(width=200, record=True)
    console.print(rounds_table([row]))
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= TABLE_WIDTH
    assert "1248" in "".join(lines)  # fit + relevance + fill seconds


def test_a_report_with_nothing_swept_groups_its_runs_by_reduction(tmp_path: Path) -> None:
    from tests.test_confirmatory import run

    out = sweep_report([run(0, "prediction", 0.5), run(1, "prediction", 0.6)], [tmp_path], tmp_path / "report")
    text = out.read_text()
    assert "False" not in text and "| runs |" in text and "with reduction" in text
