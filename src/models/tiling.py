"""Logits of images at any size through square windows: overlap-tile sliding windows with Gaussian
blending (MONAI's ``sliding_window_inference``, the reference implementation, rather than our own)
over images whose borders are mirrored first, as the U-Net paper does."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# mirrored context around images scored in tiles (a net trained on crops), as the U-Net paper does
TILE_BORDER = 16


def window_logits(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    roi_size: int | None,
    overlap: float = 0.25,
    batch_size: int = 4,
    border: int = TILE_BORDER,
) -> torch.Tensor:
    """Logits (N, K, H, W) of images (N, C, H, W) through ``logits_of`` in square tiles of side
    ``roi_size`` (None: one window), over the images mirrored by ``border`` pixels: the path of
    both :func:`src.prediction.tiling.predict_probabilities` and a model evaluated on whole images (``data.crop_size``)."""
    border = min(border, images.shape[-2] - 1, images.shape[-1] - 1)
    x = F.pad(images, (border,) * 4, mode="reflect") if border > 0 else images
    roi = (roi_size, roi_size) if roi_size else tuple(x.shape[-2:])
    # imported here: MONAI's import (its apps pull in Optuna) would slow every start
    from monai.inferers import sliding_window_inference

    logits = sliding_window_inference(x, roi, batch_size, logits_of, overlap=overlap, mode="gaussian", padding_mode="reflect")
    assert isinstance(logits, torch.Tensor)  # one tensor in, one out (MONAI also maps tuples and dicts)
    return logits[..., border:-border, border:-border] if border > 0 else logits
