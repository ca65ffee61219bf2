"""Saving figures atomically and sending them to the experiment loggers."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger  # noqa: E402

from src.runs.atomic import write_bytes_atomic  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def log_images(loggers: Sequence[Logger], images: Mapping[str, Path], step: int, caption: str = "") -> None:
    """PNG files to W&B (``log_image``) and TensorBoard (``add_image``); other loggers skip them."""
    for logger in loggers:
        for key, path in images.items():
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[str(path)], step=step, caption=[caption or key])
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(key, plt.imread(path)[..., :3], global_step=step, dataformats="HWC")
