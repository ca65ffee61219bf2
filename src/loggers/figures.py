"""Making figures, saving them atomically and sending them to the experiment loggers.

Figures are ``matplotlib.figure.Figure`` objects drawn on an Agg canvas here, where they are
written, so no module switches matplotlib's global backend and pyplot's figure registry is never
involved (nothing to close, nothing to leak across a sweep).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from src.storage.atomic import write_bytes_atomic
from src.storage.image_files import read_rgb


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot: ``figsize`` goes to the figure, the rest to ``Figure.subplots``."""
    fig = Figure(figsize=kwargs.pop("figsize", None))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figure(fig: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())


def log_images(loggers: Sequence[Logger], images: Mapping[str, Path], step: int, caption: str = "") -> None:
    """PNG files to W&B (``log_image``) and TensorBoard (``add_image``); other loggers skip them."""
    for logger in loggers:
        for key, path in images.items():
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[str(path)], step=step, caption=[caption or key])
            elif isinstance(logger, TensorBoardLogger):
                pixels = read_rgb(path).astype(np.float32) / 255.0
                logger.experiment.add_image(key, pixels, global_step=step, dataformats="HWC")
