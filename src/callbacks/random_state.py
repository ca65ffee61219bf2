"""Exact resume: the random streams a fit draws from are saved in every checkpoint and restored
from it, so a resumed run continues with the numbers the uninterrupted run would have drawn.

Lightning saves weights, optimizer and loop counters but not the random generators. This callback
adds the global torch (and CUDA), numpy and python states. Where Lightning's own draws differ
between a fresh and a resumed fit (it makes loaders at other moments), saved states are not
enough, so every stream the training consumes is also a function of (run seed, epoch): the
global generator is reseeded at each epoch's first step (dropout), the sampler's order comes from
(seed, epoch) (``EpochShuffle``), and each augmented item from (seed, epoch, item), which also
makes loader workers stateless. Checkpoints are written at epoch ends, so the sampler's position
is the epoch number itself.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from src.seeding import epoch_seed


class RandomState(Callback):
    """Args:
    seed: the run's seed; each epoch's augmentation seed is derived from it and the epoch.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def state_dict(self) -> dict[str, Any]:
        # plain tensors and tuples only, so checkpoints still load with torch.load(weights_only=True)
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)),
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        version, internal, gauss_next = state_dict["python"]
        random.setstate((version, tuple(internal), gauss_next))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])

    # on_train_start too: a resumed fit may skip the hook of the epoch it resumes into
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seed_augmentation(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._seed_augmentation(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        # dropout and any other draw in the steps start each epoch from (seed, epoch): how many
        # numbers Lightning drew before the first step (loaders made, a resume) cannot shift them
        if batch_idx == 0:
            torch.manual_seed(epoch_seed(self.seed, trainer.current_epoch) + 1)

    def _seed_augmentation(self, trainer: L.Trainer) -> None:
        # the set the epoch reads (Lightning sets up the loaders before these hooks)
        loader = trainer.train_dataloader
        for part in _parts(loader.dataset if isinstance(loader, DataLoader) else None):
            if hasattr(part, "set_epoch_seed"):
                part.set_epoch_seed(epoch_seed(self.seed, trainer.current_epoch))


def _parts(dataset: Dataset | None) -> Iterator[Dataset]:
    """``dataset`` and the datasets inside it (ConcatDataset, Subset)."""
    if dataset is None:
        return
    yield dataset
    for inner in getattr(dataset, "datasets", []):
        yield from _parts(inner)
    if isinstance(getattr(dataset, "dataset", None), Dataset):
        yield from _parts(dataset.dataset)
