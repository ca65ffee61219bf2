"""Checks, before any training, that results can be written where the run will write them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from src.config.errors import UserInputError

MARGIN = 50 * 2**20  # logs, figures, masks, config copies


def check_writable(path: Path, what: str, need_bytes: int = MARGIN) -> None:
    """``path`` is, or can be created as, a writable folder with ``need_bytes`` free below it."""
    existing = Path(path).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(f"{what}={path} cannot be created: {existing} is a file, not a folder. Choose another {what}.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(f"{what}={path} is not writable: this user cannot write in {existing}. Choose a writable {what}.")
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        raise UserInputError(
            f"{what}={path}: only {free / 2**20:.0f} MiB free on its disk, and this run needs about {need_bytes / 2**20:.0f} MiB "
            "(checkpoints, logs, masks). Free some space or choose another folder."
        )


def checkpoint_bytes(parameter_count: int) -> int:
    """Room for the best and the last checkpoint: float32 weights plus two optimizer moments each."""
    return 2 * 3 * 4 * parameter_count + MARGIN
