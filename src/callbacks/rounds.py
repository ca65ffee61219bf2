"""What a callback that splits a fit into rounds of epochs (the saliency reduction) tells the
other callbacks: its rounds and their length, so a message can name the round an epoch is in."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback


class TrainingInRounds(Callback):
    """A fit of ``rounds`` x ``epochs_per_round`` epochs (set by the subclass)."""

    rounds: int
    epochs_per_round: int

    def round_of(self, epoch: int) -> int:
        """The round (from 1) that epoch ``epoch`` (from 0) trains in."""
        return min(epoch // self.epochs_per_round + 1, self.rounds)
