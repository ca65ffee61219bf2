"""The best checkpoint within the reduction's final round.

When a reduction hurts, the run's best checkpoint falls back to weights from before it (round 1),
so "reduction vs baseline" partly measures that fallback. This checkpoint is chosen by the same
monitor, but only among the epochs trained on the finally reduced set: what training on the
reduced set yields.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class FinalRoundCheckpoint(ModelCheckpoint):
    """A weights-only ``ModelCheckpoint`` that saves only from ``start_epoch`` (0-based) on:
    ``final_round_epoch_NNN.ckpt``."""

    def __init__(self, start_epoch: int, dirpath: str, monitor: str = "val/loss", mode: str = "min") -> None:
        super().__init__(
            dirpath=dirpath,
            filename="final_round_epoch_{epoch:03d}",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            save_weights_only=True,
            auto_insert_metric_name=False,
        )
        self.start_epoch = start_epoch

    @property
    def state_key(self) -> str:
        # apart from the run's best-checkpoint callback, which watches the same monitor
        return self._generate_state_key(monitor=self.monitor, mode=self.mode, final_round_from=self.start_epoch)

    def _should_skip_saving_checkpoint(self, trainer: L.Trainer) -> bool:
        return trainer.current_epoch < self.start_epoch or super()._should_skip_saving_checkpoint(trainer)
