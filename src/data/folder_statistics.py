"""The per-channel statistics a model trained on ``data=folder`` normalises by."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from src.storage.image_files import read_image

# images normalised with statistics of at most this many training images (streamed sets decode them)
STATISTICS_IMAGES = 256


def channel_statistics(images: Sequence[Path], channels: int, intensity_max: float | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std, in [0, 1], of the first :data:`STATISTICS_IMAGES` of ``images``
    (a std below 1e-3 is raised to it: a flat channel must not divide by zero)."""
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for path in images[:STATISTICS_IMAGES]:
        pixels = read_image(path, channels, intensity_max).reshape(channels, -1) / 255.0
        total += pixels.sum(1)
        squares += (pixels**2).sum(1)
        count += pixels.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return tuple(float(m) for m in mean), tuple(float(max(s, 1e-3)) for s in std)
