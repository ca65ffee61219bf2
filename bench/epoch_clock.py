"""A callback that notes when each training epoch starts, for the overhead comparison."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import Callback

# epoch start times of the fits since the bench last cleared it (one process, one fit at a time)
STARTS: list[float] = []


class EpochClock(Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        STARTS.append(time.perf_counter())
