"""A callback the resume tests add to a run (``+callbacks.kill._target_=killpoints.KillAt``): it
SIGKILLs its own process at a chosen point, as a dying node would."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from src.reduction.callback import SaliencyReduction


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _listen_to_relevance(trainer: L.Trainer, listener: Callable[[L.Trainer, int], None]) -> None:
    """``listener`` called after each relevance batch, through the reduction's documented hook."""
    (reducer,) = (c for c in trainer.callbacks if isinstance(c, SaliencyReduction))
    reducer.relevance_listeners.append(listener)


class KillAt(Callback):
    """Args:
    point: fit (a training step of ``epoch``), relevance (the first relevance batch after
        ``epoch``, through the reduction's ``relevance_listeners`` hook), checkpoint (a checkpoint of ``epoch`` written to its temporary file, not yet
        renamed into place) or background (the same, by the background writer, once training has
        gone on to the next epoch: its reduction done, its files written, its checkpoint not).
    epoch: the epoch at which to die.
    """

    def __init__(self, point: str, epoch: int) -> None:
        self.point, self.epoch = point, epoch
        self._next_epoch_running = threading.Event()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.point == "relevance":

            def die_in_relevance(trainer: L.Trainer, images: int) -> None:
                if trainer.current_epoch == self.epoch:
                    _die()

            _listen_to_relevance(trainer, die_in_relevance)
        elif self.point == "checkpoint":
            save = TorchCheckpointIO.save_checkpoint

            def save_then_die(io, checkpoint, path, storage_options=None):
                save(io, checkpoint, path, storage_options)
                if checkpoint["epoch"] == self.epoch:
                    _die()

            TorchCheckpointIO.save_checkpoint = save_then_die
        elif self.point == "background":
            save = TorchCheckpointIO.save_checkpoint

            def save_later_then_die(io, checkpoint, path, storage_options=None):
                save(io, checkpoint, path, storage_options)
                if checkpoint["epoch"] == self.epoch:
                    if threading.current_thread() is threading.main_thread():
                        raise AssertionError("the checkpoint was written on the training thread, not in the background")
                    if not self._next_epoch_running.wait(timeout=300):
                        raise AssertionError("training did not go on while the checkpoint was being written")
                    _die()

            TorchCheckpointIO.save_checkpoint = save_later_then_die

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.point == "fit" and trainer.current_epoch == self.epoch and batch_idx == 2:
            _die()
        if self.point == "background" and trainer.current_epoch == self.epoch + 1:
            self._next_epoch_running.set()


class RaiseOnRank(Callback):
    """Raise in the relevance pass on one DDP rank only, as a rank hitting a bad image would."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        def fail_on_rank(trainer: L.Trainer, images: int) -> None:
            if trainer.global_rank == self.rank:
                raise RuntimeError(f"injected failure on rank {self.rank}")

        _listen_to_relevance(trainer, fail_on_rank)


class StallUntilRequeued(Callback):
    """At the start of ``epoch``, in a job's first run only (Slurm's SLURM_RESTART_COUNT unset),
    wait for the scheduler: a job that would finish before its time limit then reaches it, and
    its requeued run goes on at full speed. Waiting changes no number the run computes."""

    def __init__(self, epoch: int, seconds: float = 600.0) -> None:
        self.epoch, self.seconds = epoch, seconds

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and int(os.environ.get("SLURM_RESTART_COUNT", "0")) == 0:
            time.sleep(self.seconds)


class RecordEpochStartWeights(Callback):
    """At each epoch's first training batch (after every epoch-start hook, a new round's
    re-initialisation included), a sha256 of the weights in ``<output_dir>/epoch_NNN.sha256``
    (rank 0; a resumed run rewrites the epochs it trains again)."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == 0 and trainer.is_global_zero:
            digest = hashlib.sha256()
            for name, tensor in sorted(pl_module.state_dict().items()):
                digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / f"epoch_{trainer.current_epoch:03d}.sha256").write_text(digest.hexdigest())
