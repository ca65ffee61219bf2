"""Wall seconds since the fit started, logged after every training epoch (validation
included), so reports can give convergence in seconds as well as epochs."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import Callback


class ElapsedTime(Callback):
    def __init__(self) -> None:
        self._started = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # straight to the loggers: a value logged through the module would land in validate()'s results
        scalars = {"time/elapsed_s": time.perf_counter() - self._started, "epoch": trainer.current_epoch}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=trainer.global_step)
