"""A callback the resume tests add to a run (``+callbacks.kill._target_=killpoints.KillAt``): it
SIGKILLs its own process at a chosen point, as a dying node would."""

from __future__ import annotations

import os
import signal

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

import src.reduction.callback as reduction_callback


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    """Args:
    point: fit (a training step of ``epoch``), relevance (the first relevance batch after
        ``epoch``) or checkpoint (a checkpoint of ``epoch`` written to its temporary file, not yet
        renamed into place).
    epoch: the epoch at which to die.
    """

    def __init__(self, point: str, epoch: int) -> None:
        self.point, self.epoch = point, epoch

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.point == "relevance":
            compute = reduction_callback.relevance_maps

            def relevance_then_die(*args, **kwargs):
                if trainer.current_epoch == self.epoch:
                    _die()
                return compute(*args, **kwargs)

            reduction_callback.relevance_maps = relevance_then_die
        elif self.point == "checkpoint":
            save = TorchCheckpointIO.save_checkpoint

            def save_then_die(io, checkpoint, path, storage_options=None):
                save(io, checkpoint, path, storage_options)
                if checkpoint["epoch"] == self.epoch:
                    _die()

            TorchCheckpointIO.save_checkpoint = save_then_die

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.point == "fit" and trainer.current_epoch == self.epoch and batch_idx == 2:
            _die()


class RaiseOnRank(Callback):
    """Raise in the relevance pass on one DDP rank only, as a rank hitting a bad image would."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        compute = reduction_callback.relevance_maps

        def relevance_or_fail(*args, **kwargs):
            if trainer.global_rank == self.rank:
                raise RuntimeError(f"injected failure on rank {self.rank}")
            return compute(*args, **kwargs)

        reduction_callback.relevance_maps = relevance_or_fail
