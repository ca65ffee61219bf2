"""Stop a fit at the first NaN or Inf loss, before its backward pass and optimizer step, so the
weights in memory and the checkpoints on disk are the last good ones."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from src.callbacks.rounds import TrainingInRounds
from src.config.errors import TrainingDiverged


class FiniteLoss(Callback):
    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            return
        where = f"step {trainer.global_step}, epoch {trainer.current_epoch}{_round(trainer)}"
        last = _last_checkpoint(trainer)
        kept = f"The last good checkpoint, {last}, is intact." if last else "No checkpoint was written before it."
        raise TrainingDiverged(
            f"the training loss is {loss.detach().float().mean().item()} at {where}; training stopped. {kept} "
            "Lower model.optimizer.lr, set trainer.gradient_clip_val, or check the data for NaN values."
        )


def _round(trainer: L.Trainer) -> str:
    for callback in trainer.callbacks:
        if isinstance(callback, TrainingInRounds):
            return f", reduction round {callback.round_of(trainer.current_epoch)} of {callback.rounds}"
    return ""


def _last_checkpoint(trainer: L.Trainer) -> Path | None:
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath and (Path(callback.dirpath) / "last.ckpt").is_file():
            return Path(callback.dirpath) / "last.ckpt"
    return None
