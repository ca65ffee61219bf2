"""What a reduction run leaves behind: rounds.csv, per-round masks and example grids."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.loggers import Logger, WandbLogger
from matplotlib import colormaps
from matplotlib.figure import Figure
from rich.table import Table

from src.data.segmentation_dataset import to_unit
from src.loggers.figures import log_images, save_figure, subplots
from src.reduction.packed import pack, unpack
from src.storage.atomic import write_bytes_atomic
from src.storage.results import console, write_csv_atomic


def write_round(
    output_dir: Path,
    history: Sequence[dict[str, float]],
    masks: torch.Tensor,
    relevance: torch.Tensor | None,
    original: torch.Tensor,
    targets: torch.Tensor,
    reduced: torch.Tensor,
    examples: int,
    method: str,
    loggers: Sequence[Logger],
    step: int,
) -> None:
    """The last round of ``history``: its keep-masks (``round_NN/masks.npz``), rounds.csv, and a
    grid of the first ``examples`` images (the original, its target, its relevance, its mask and
    the ``reduced`` image) as ``round_NN/examples.png``, logged to ``loggers`` with the row."""
    row = history[-1]
    round_dir = output_dir / f"round_{int(row['round']):02d}"
    write_masks(round_dir / "masks.npz", masks, torch.arange(len(masks)))
    write_rounds_csv(output_dir / "rounds.csv", history)
    # the examples come from the first relevance batch, which reduction.batch_size may make the smaller
    k = 0 if relevance is None else min(examples, len(masks), len(relevance))
    if k:
        assert relevance is not None
        title = f"round {int(row['round'])}: kept {row['kept_fraction']:.3f} of the pixels ({method})"
        figure = examples_figure(to_unit(original[:k]), targets[:k], relevance[:k], masks[:k], to_unit(reduced[:k]), title=title)
        save_figure(figure, round_dir / "examples.png")
        log_round(loggers, row, round_dir / "examples.png", step=step)


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
    """One row per sample: image, ground truth, relevance heat map, keep-mask, reduced image. The
    panels are laid out as one picture on one axes (a grid of axes is far slower to draw, at
    every round of every run); images and relevance are scaled to their own range, as imshow
    would, targets and keep-masks from 0 to their largest class (an all-kept mask is white)."""
    columns = ("image", "ground truth", "relevance", "kept pixels", "reduced image")
    n = len(images)
    rows = []
    for i in range(n):
        target = targets[i].float()
        target = target[0] if target.ndim == 3 else target
        classes = (0.0, max(1.0, target.max().item()))
        panels = (
            _display(images[i]),
            _gray(target.numpy(), *classes),
            _heat(relevance[i].float().numpy()),
            _gray(masks[i].numpy(), 0.0, 1.0),
            _display(reduced[i]),
        )
        rows.append(_side_by_side(panels))
    grid = np.concatenate([np.concatenate([row, np.ones((GAP, row.shape[1], 3))]) for row in rows])[:-GAP]
    fig, ax = subplots(figsize=(2.0 * len(columns), 2.0 * n + 0.4))
    ax.imshow(grid, interpolation="nearest")
    width = images.shape[-1] + GAP
    ax.set_xticks([j * width + images.shape[-1] / 2 for j in range(len(columns))], columns, fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.tick_params(length=0)
    ax.set_frame_on(False)
    ax.set_title(title, pad=18)
    fig.tight_layout()
    return fig


# white pixels between the panels of examples.png
GAP = 2


def _side_by_side(panels: Sequence[np.ndarray]) -> np.ndarray:
    height = panels[0].shape[0]
    gap = np.ones((height, GAP, 3))
    return np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1)


def _gray(panel: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """(H, W) scaled from ``low`` to ``high`` (default: its own min and max; a constant panel is
    black), as RGB."""
    panel = panel.astype(np.float64)
    low = panel.min() if low is None else low
    high = panel.max() if high is None else high
    scaled = np.clip((panel - low) / (high - low), 0, 1) if high > low else np.zeros_like(panel)
    return np.repeat(scaled[..., None], 3, axis=2)


def _heat(panel: np.ndarray) -> np.ndarray:
    """(H, W) relevance scaled to its own range, in the inferno colour map, as RGB."""
    return colormaps["inferno"](_gray(panel)[..., 0])[..., :3]


def _display(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> RGB: a gray image scaled to its own range (as imshow shows it)."""
    array = image.float().clamp(0, 1).numpy()
    return _gray(array[0]) if array.shape[0] == 1 else array[:3].transpose(1, 2, 0).astype(np.float64)


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
    ("val/miou", "val mIoU"),
    ("mean_spatial_entropy", "entropy"),
    ("mean_moment_of_inertia", "inertia"),
    ("oracle_keep_iou", "oracle IoU"),
    ("cue_share", "cue left"),
    ("round_seconds", "seconds"),
)
# the width the console table keeps to (a terminal or a log read in one)
TABLE_WIDTH = 100


def rounds_table(rows: Sequence[dict[str, float]]) -> Table:
    """The essentials of ``rows`` in at most ``TABLE_WIDTH`` characters (the round's fit,
    relevance and fill seconds as one; ``val/mse`` and ``val/mdice`` are in rounds.csv)."""
    shown = [{**row, "round_seconds": sum(row.get(key, 0.0) for key in ("fit_seconds", "relevance_seconds", "fill_seconds"))} for row in rows]
    columns = [(key, header) for key, header in TABLE_COLUMNS if shown and key in shown[0]]
    table = Table(title="saliency reduction, per round (all columns: reduction/rounds.csv)")
    for _, header in columns:
        table.add_column(header, justify="right")
    for row in shown:
        table.add_row(*(_format(row.get(key)) for key, _ in columns))
    return table


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_rounds(rows: Sequence[dict[str, float]]) -> None:
    console().print(rounds_table(rows))
