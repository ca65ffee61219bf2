"""What a reduction run leaves behind: rounds.csv, per-round masks and example grids."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.loggers import Logger, WandbLogger
from matplotlib.figure import Figure
from rich.table import Table

from src.loggers.figures import log_images, subplots
from src.reduction.packed import pack, unpack
from src.storage.atomic import write_bytes_atomic
from src.storage.results import console, write_csv_atomic


def write_rounds_csv(path: Path, rows: Sequence[dict[str, float]]) -> None:
    """All rounds so far, one row each (rewritten whole every round, atomically)."""
    write_csv_atomic(path, rows)


def write_masks(path: Path, masks: torch.Tensor, ids: torch.Tensor) -> None:
    """Keep-masks (N, H, W), one bit per pixel (``bits``, ``shape``; read them with
    :func:`read_masks`), with the training-set index of each image (``ids``)."""
    packed = pack(masks)
    buffer = io.BytesIO()
    np.savez(buffer, bits=packed["bits"].numpy(), shape=packed["shape"].numpy(), ids=ids.cpu().numpy())
    write_bytes_atomic(path, buffer.getvalue())


def read_masks(path: Path) -> np.ndarray:
    """The boolean (N, H, W) keep-masks of a masks.npz."""
    with np.load(path) as stored:
        return unpack({"bits": torch.from_numpy(stored["bits"]), "shape": torch.from_numpy(stored["shape"])}).numpy()


def examples_figure(images: torch.Tensor, targets: torch.Tensor, relevance: torch.Tensor, masks: torch.Tensor, reduced: torch.Tensor, title: str) -> Figure:
    """One row per sample: image, ground truth, relevance heat map, keep-mask, reduced image."""
    columns = ("image", "ground truth", "relevance", "kept pixels", "reduced image")
    n = len(images)
    fig, axes = subplots(n, len(columns), figsize=(2.0 * len(columns), 2.0 * n), squeeze=False)
    for i in range(n):
        target = targets[i].float()
        target = target[0] if target.ndim == 3 else target
        panels = (
            (_display(images[i]), "gray"),
            (target.numpy(), "gray"),
            (relevance[i].numpy(), "inferno"),
            (masks[i].numpy(), "gray"),
            (_display(reduced[i]), "gray"),
        )
        for j, (panel, cmap) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(panel, cmap=cmap, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[j], fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _display(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> something imshow shows (gray or RGB)."""
    array = image.float().clamp(0, 1).numpy()
    return array[0] if array.shape[0] == 1 else array[:3].transpose(1, 2, 0)


def log_round(loggers: Sequence[Logger], row: dict[str, float], examples_png: Path, step: int) -> None:
    """Per-round scalars to every logger (``reduction/…``, with ``round`` as a key); the example
    grid as an image to W&B and TensorBoard; the rounds so far as a W&B table."""
    scalars = {f"reduction/{k}": v for k, v in row.items() if isinstance(v, (int, float))}
    for logger in loggers:
        logger.log_metrics(scalars, step=step)
    log_images(loggers, {"reduction/examples": examples_png}, step=int(row["round"]), caption=f"round {row['round']}")


def log_rounds_table(loggers: Sequence[Logger], rows: Sequence[dict[str, float]]) -> None:
    for logger in loggers:
        if isinstance(logger, WandbLogger) and rows:
            columns = list(rows[0])
            logger.log_table(key="reduction/rounds", columns=columns, data=[[row.get(c) for c in columns] for row in rows])


# (column in rounds.csv, header in the console table): the console shows the essentials
TABLE_COLUMNS = (
    ("round", "round"),
    ("kept_fraction", "kept"),
    ("val/loss", "val loss"),
    ("val/mse", "val mse"),
    ("val/miou", "val mIoU"),
    ("val/mdice", "val mDice"),
    ("mean_spatial_entropy", "entropy"),
    ("mean_moment_of_inertia", "inertia"),
    ("oracle_keep_iou", "IoU w/ oracle"),
    ("cue_share", "cue left"),
    ("fit_seconds", "fit s"),
    ("relevance_seconds", "relevance s"),
    ("fill_seconds", "fill s"),
)


def rounds_table(rows: Sequence[dict[str, float]]) -> Table:
    columns = [(key, header) for key, header in TABLE_COLUMNS if rows and key in rows[0]]
    table = Table(title="saliency reduction, per round (all columns: reduction/rounds.csv)")
    for _, header in columns:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*(_format(row.get(key)) for key, _ in columns))
    return table


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_rounds(rows: Sequence[dict[str, float]]) -> None:
    console().print(rounds_table(rows))
