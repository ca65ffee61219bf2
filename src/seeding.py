"""The seeds every random stream of a fit is drawn from: one per (run seed, epoch), and one per
(epoch seed, item). The data sets draw each augmented item from them and the ``RandomState``
callback reseeds each epoch from them, so a resumed fit draws what the uninterrupted one drew."""

from __future__ import annotations


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**62


def item_seed(epoch_seed: int, index: int) -> int:
    return (epoch_seed * 1_000_033 + index) % 2**62


# the reduction's draws that are not per image, each its own stream of (run seed, round)
REINIT_STREAM = 1
SMOOTHGRAD_STREAM = 2


def round_seed(seed: int, round_: int, stream: int) -> int:
    """The seed of one of the reduction's draws (``stream``) in ``round_`` of the run seeded with
    ``seed``: another seed or round gives another draw, a resume the same."""
    return item_seed(epoch_seed(seed, round_), stream)
