"""Whole-image prediction at any size: a trained module's class probabilities through
:func:`src.models.tiling.window_logits`, with the image resized first where the module was trained
on resized images."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from src.models.segmentation import SegmentationModule
from src.models.tiling import window_logits


def allow_any_size(module: SegmentationModule) -> None:
    """Our U-Net and FCN reflect-pad sides that do not divide by their downsampling factor and
    crop the output back; switch that on for prediction."""
    if hasattr(module.net, "pad_input"):
        module.net.pad_input = True


@torch.no_grad()
def predict_probabilities(
    module: SegmentationModule,
    image: torch.Tensor,
    roi_size: int | None = None,
    overlap: float = 0.25,
    batch_size: int = 4,
    border: int | None = None,
    input_scale: float = 1.0,
) -> torch.Tensor:
    """Class probabilities (K, H, W) for one image (C, H, W) in [0, 1].

    ``roi_size`` None predicts as the model's own evaluation does
    (:meth:`~src.models.segmentation.SegmentationModule.evaluation_window`: tiles of its
    ``eval_window`` for a net trained on crops, else the whole image in one window); N: square
    tiles of that side, overlapping by ``overlap`` and blended with a Gaussian weight. ``border``
    pixels of mirrored image surround it first, so tiles at the edge see context; None: the
    model's evaluation's border (0 for a net that trained and scored on whole images, which never
    saw a mirrored edge). ``input_scale`` resizes the image first (e.g. 0.25 for a net trained on
    512 px images resized to 128) and the probabilities back.
    """
    window, evaluation_border = module.evaluation_window()
    roi_size = window if roi_size is None else roi_size
    border = evaluation_border if border is None else border
    x = image[None].to(module.device, torch.float32)
    height, width = x.shape[-2:]
    if input_scale != 1.0:
        x = F.interpolate(x, scale_factor=input_scale, mode="bilinear", antialias=True, align_corners=False)
    logits = window_logits(module.predict_logits, x, roi_size, overlap, batch_size, border)
    probabilities = module.probabilities(logits)
    if input_scale != 1.0:
        probabilities = F.interpolate(probabilities, size=(height, width), mode="bilinear", align_corners=False)
    return probabilities[0].cpu()
