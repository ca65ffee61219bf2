"""The seeds every random stream of a fit is drawn from: one per (run seed, epoch), and one per
(epoch seed, item). The data sets draw each augmented item from them and the ``RandomState``
callback reseeds each epoch from them, so a resumed fit draws what the uninterrupted one drew."""

from __future__ import annotations


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**62


def item_seed(epoch_seed: int, index: int) -> int:
    return (epoch_seed * 1_000_033 + index) % 2**62
