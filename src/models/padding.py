"""Fitting arbitrary image sizes to nets that halve the resolution a fixed number of times."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from src.config.errors import UserInputError


def pad_to_multiple(x: torch.Tensor, factor: int, pad: bool, model_name: str) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad ``x`` (bottom/right) so both sides divide by ``factor``; or refuse, with the fix.

    Returns the padded tensor and the original (H, W) for cropping the output back.
    """
    height, width = x.shape[-2:]
    extra_h, extra_w = -height % factor, -width % factor
    if extra_h or extra_w:
        if not pad:
            raise UserInputError(
                f"{model_name} needs image sides divisible by {factor} (2^depth), got {height}x{width}. "
                f"Resize the data to a multiple of {factor}, lower model.net.depth, or set "
                "model.net.pad_input=true to reflect-pad and crop back."
            )
        mode = "reflect" if extra_h < height and extra_w < width else "replicate"
        x = F.pad(x, (0, extra_w, 0, extra_h), mode=mode)
    return x, (height, width)


def crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]
