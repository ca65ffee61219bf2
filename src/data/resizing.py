"""Resizing decoded uint8 images and class maps to a square side, as every data set does."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_image(image: np.ndarray, side: int) -> np.ndarray:
    """(C, H, W) uint8 to (C, side, side): bilinear with antialiasing, as Pet's images."""
    if image.shape[-2:] == (side, side):
        return image
    resized = F.interpolate(torch.from_numpy(image)[None].float(), size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return resized[0].round().clamp(0, 255).to(torch.uint8).numpy()


def resize_mask(mask: np.ndarray, side: int) -> np.ndarray:
    """(H, W) class map to (side, side) by each output pixel's centre (labels stay labels)."""
    if mask.shape == (side, side):
        return mask
    resized = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=(side, side), mode="nearest-exact")
    return resized[0, 0].to(torch.uint8).numpy()
