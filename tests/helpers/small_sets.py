"""Small data modules for unit tests."""

from __future__ import annotations

from pathlib import Path

from src.config.schemas import with_defaults
from src.data.eliret import EliretDataModule


def setup_dm(folder: Path, **kwargs) -> EliretDataModule:
    """An eliret data module on ``folder`` (8 training images a class, batches of 4), set up for fit."""
    dm = with_defaults(EliretDataModule, str(folder), batch_size=4, n_per_class=8, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm
