"""Keep-masks stored one bit per pixel (``np.packbits``), in checkpoints and masks.npz: a
Pet-sized set (7,349 images at 256 px) takes 60 MB instead of 481 MB per copy."""

from __future__ import annotations

import numpy as np
import torch


def pack(masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks (N, H, W) as {"bits": (N, ceil(H*W/8)) uint8, "shape": (3,) int64}."""
    flat = masks.detach().cpu().numpy().astype(bool).reshape(len(masks), -1)
    return {"bits": torch.from_numpy(np.packbits(flat, axis=1)), "shape": torch.tensor(masks.shape, dtype=torch.int64)}


def unpack(packed: dict[str, torch.Tensor]) -> torch.Tensor:
    n, height, width = (int(v) for v in packed["shape"])
    bits = np.unpackbits(packed["bits"].numpy(), axis=1, count=height * width)
    return torch.from_numpy(bits.astype(bool)).view(n, height, width)


def bytes_per_image(masks: torch.Tensor) -> float:
    return pack(masks)["bits"].numel() / max(1, len(masks))
