"""The cluster pieces on their own, without a scheduler: run dirs in an srun step, ``ckpt_path=last``
finding the run to resume, the requeue on SIGUSR1, the Slurm launcher's messages and GPU request
(tests/test_slurm.py runs them through a real one).
"""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from omegaconf import OmegaConf

from hydra_plugins.salseg_sweepers.slurm_launcher import refusal_message
from src.callbacks.requeue import Requeued, RequeueOnSignal
from src.config import slurm
from src.runs.rerun import expand_arguments, unfinished_runs

SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")


@pytest.fixture
def no_slurm(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SLURM_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_an_srun_steps_tasks_share_one_run_dir_and_keep_their_own_hydra_files(no_slurm: pytest.MonkeyPatch) -> None:
    assert slurm.run_stamp("2026-01-01_00-00-00_000001") == "2026-01-01_00-00-00_000001"
    assert (slurm.task_rank(), slurm.rank_suffix()) == (0, "")
    no_slurm.setenv("SLURM_JOB_ID", "41")
    assert slurm.step_stamp() is None  # the batch script itself: no step, a timestamped dir
    no_slurm.setenv("SLURM_STEP_ID", "0")
    no_slurm.setenv("SLURM_PROCID", "1")
    assert slurm.run_stamp("now") == "slurm-41.0"
    assert (slurm.task_rank(), slurm.rank_suffix()) == (1, "_rank1")
    no_slurm.setenv("SLURM_ARRAY_JOB_ID", "40")
    no_slurm.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm.job_id() == "40_3" and slurm.step_stamp() == "slurm-40_3.0"


def test_the_run_dir_config_takes_the_steps_stamp(no_slurm: pytest.MonkeyPatch) -> None:
    from src.config.registration import register

    register()

    cfg = OmegaConf.create({"dir": "${run_stamp:stamp}", "subdir": ".hydra${rank_suffix:}", "gpus": "${slurm_gpus:cpu,2}", "gpus_on": "${slurm_gpus:auto,2}"})
    assert (cfg.dir, cfg.subdir, cfg.gpus, cfg.gpus_on) == ("stamp", ".hydra", None, 2)
    no_slurm.setenv("SLURM_JOB_ID", "7")
    no_slurm.setenv("SLURM_STEP_ID", "2")
    no_slurm.setenv("SLURM_PROCID", "3")
    cfg = OmegaConf.create({"dir": "${run_stamp:stamp}", "subdir": ".hydra${rank_suffix:}"})
    assert (cfg.dir, cfg.subdir) == ("slurm-7.2", ".hydra_rank3")


def _run(log_dir: Path, name: str, overrides: list[str], finished: bool = False, checkpoint_age: float = 0.0, config: str = "train") -> Path:
    run = log_dir / "train" / "runs" / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"config_name": config}}}))
    (run / "checkpoints").mkdir()
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(b"weights")
    os.utime(last, (1e9 + checkpoint_age, 1e9 + checkpoint_age))
    if finished:
        (run / "metrics.json").write_text("{}")
    return run


def test_ckpt_path_last_finds_the_newest_unfinished_run_of_the_same_overrides(tmp_path: Path, no_slurm: pytest.MonkeyPatch, capsys) -> None:
    args = ["seed=1", "model=fcn", f"paths.log_dir={tmp_path}"]
    older = _run(tmp_path, "a", [*reversed(args), "ckpt_path=last"], checkpoint_age=1)
    newer = _run(tmp_path, "b", args, checkpoint_age=2)
    _run(tmp_path, "c", args, finished=True, checkpoint_age=3)  # it ended: nothing to resume
    _run(tmp_path, "d", ["seed=2", *args[1:]], checkpoint_age=4)  # other overrides
    _run(tmp_path, "e", args, checkpoint_age=5, config="eval")  # another entry point
    assert unfinished_runs(tmp_path, "train", args) == [newer, older]
    expanded = expand_arguments(["train.py", "ckpt_path=last", *args])
    assert f"hydra.run.dir='{newer.resolve()}'" in expanded and f"ckpt_path='{newer.resolve() / 'checkpoints' / 'last.ckpt'}'" in expanded
    assert expanded.count("seed=1") == 1  # the recorded overrides, not repeated
    said = capsys.readouterr().err
    assert f"resuming {newer}" in said and f"1 older unfinished run(s) of the same overrides left as they are: {older}" in said
    # none of them: a new run, the argument unchanged
    assert expand_arguments(["train.py", "ckpt_path=last", "seed=9", f"paths.log_dir={tmp_path}"]) == [
        "train.py",
        "ckpt_path=last",
        "seed=9",
        f"paths.log_dir={tmp_path}",
    ]


def test_ckpt_path_last_means_this_dir_in_a_fixed_run_dir(tmp_path: Path, no_slurm: pytest.MonkeyPatch) -> None:
    _run(tmp_path, "a", ["seed=1"])
    pinned = ["train.py", "ckpt_path=last", "seed=1", f"paths.log_dir={tmp_path}", "hydra.run.dir=somewhere"]
    assert expand_arguments(pinned) == pinned
    sweep = ["train.py", "-m", "ckpt_path=last", "seed=1", f"paths.log_dir={tmp_path}"]
    assert expand_arguments(sweep) == sweep
    no_slurm.setenv("SLURM_JOB_ID", "5")
    no_slurm.setenv("SLURM_STEP_ID", "0")
    step = ["train.py", "ckpt_path=last", "seed=1", f"paths.log_dir={tmp_path}"]
    assert expand_arguments(step) == step  # the step's own dir (slurm-5.0) is the one to resume


class _Strategy:
    def __init__(self) -> None:
        self.flushed = self.barriers = 0
        self.checkpoint_io = SimpleNamespace(flush=self._flush)

    def _flush(self) -> None:
        self.flushed += 1

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        return decision

    def barrier(self, name: str) -> None:
        self.barriers += 1


def test_sigusr1_stops_the_run_at_the_next_epoch_once_its_checkpoint_is_on_disk(tmp_path: Path, no_slurm: pytest.MonkeyPatch) -> None:
    trainer = SimpleNamespace(strategy=_Strategy(), current_epoch=3, default_root_dir=str(tmp_path))
    outside = RequeueOnSignal()
    outside.setup(trainer, None, "fit")
    assert outside._previous is None  # not a Slurm job: the signal keeps its handler
    no_slurm.setenv("SLURM_JOB_ID", "12")
    callback = RequeueOnSignal()
    callback.setup(trainer, None, "fit")
    try:
        callback.on_train_epoch_start(trainer, None)  # no signal yet
        os.kill(os.getpid(), signal.SIGUSR1)
        assert callback.requested
        with pytest.raises(Requeued) as stop:
            callback.on_train_epoch_start(trainer, None)
    finally:
        callback.teardown(trainer, None, "fit")
    assert (stop.value.job, stop.value.epoch, stop.value.code) == ("12", 3, 0)
    assert trainer.strategy.flushed == 1 and trainer.strategy.barriers == 1
    assert signal.getsignal(signal.SIGUSR1) is not callback._note


def test_a_refused_requeue_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.parent.mkdir()
    scontrol.write_text("#!/bin/sh\necho 'scontrol: error: Job is not requeueable' >&2\nexit 1\n")
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{scontrol.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(RuntimeError, match=r"refused to requeue job 12: scontrol: error: Job is not requeueable.*ckpt_path=/runs/x"):
        Requeued("12", 4, "/runs/x").requeue()


def test_slurms_refusals_name_the_option_to_set() -> None:
    partition = refusal_message(
        RuntimeError("Command ['sbatch', 'x.sh'] failed\nsbatch: error: invalid partition specified: gpu\nsbatch: error: Batch job submission failed")
    )
    assert partition is not None and partition.startswith("Slurm refused the job (sbatch: error: invalid partition specified: gpu)")
    assert "set hydra.launcher.partition" in partition
    resources = refusal_message(RuntimeError("sbatch: error: Batch job submission failed: Requested node configuration is not available"))
    assert resources is not None and "hydra.launcher.gpus_per_node (trainer.accelerator=cpu asks for none)" in resources
    assert refusal_message(RuntimeError("a bug of ours")) is None
