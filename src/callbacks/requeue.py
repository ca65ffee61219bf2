"""Pre-emption and time limits under Slurm: stop at an epoch's end and requeue the job.

On SIGUSR1 (``scancel --signal=USR1 <job>``, or ``#SBATCH --signal=USR1@<seconds>`` before the
time limit) the run finishes the epoch in progress, waits until that epoch's ``last.ckpt`` is on
disk, stops, and requeues its job (``scontrol requeue``). The requeued job runs the same command:
with ``ckpt_path=last`` it resumes from that checkpoint in the same run dir, at an epoch
boundary, so it ends where an uninterrupted run ends. Lightning's own handler is switched off
(``build_trainer``): it saves mid-epoch, and a mid-epoch resume repeats part of an epoch.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from src.config import slurm

log = logging.getLogger(__name__)


class Requeued(SystemExit):
    """The run stopped for its job to be requeued. Raised on every rank at an epoch's start,
    with that epoch's checkpoint on disk; the entry point calls ``requeue`` once the trainer is
    torn down (requeueing stops the job's processes, so it comes last)."""

    def __init__(self, job: str, epoch: int, run_dir: str) -> None:
        super().__init__(0)
        self.job, self.epoch, self.run_dir = job, epoch, run_dir

    def requeue(self) -> None:
        done = subprocess.run(["scontrol", "requeue", self.job], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"Slurm refused to requeue job {self.job}: {done.stderr.strip()}. The run stopped before epoch {self.epoch} with its "
                f"checkpoint on disk: resume it with `python -m src.train ckpt_path={self.run_dir}`."
            )
        log.warning("job %s requeued before epoch %d: the requeued job resumes from %s/checkpoints/last.ckpt", self.job, self.epoch, self.run_dir)


class RequeueOnSignal(Callback):
    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self.signum = signum
        self.requested = False
        self._previous: Any = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and slurm.job_id() is not None and self._previous is None:
            self._previous = signal.signal(self.signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        # only a flag: the work is done at the next epoch boundary, outside the handler
        self.requested = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._previous is None or not trainer.strategy.reduce_boolean_decision(self.requested, all=False):
            return
        flush = getattr(trainer.strategy.checkpoint_io, "flush", None)
        if flush is not None:
            flush()
        trainer.strategy.barrier("requeue")
        raise Requeued(str(slurm.job_id()), trainer.current_epoch, str(trainer.default_root_dir))

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous is not None:
            signal.signal(self.signum, self._previous)
            self._previous = None
