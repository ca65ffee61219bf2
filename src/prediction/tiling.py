"""Whole-image prediction at any size: overlap-tile sliding windows with Gaussian blending
(MONAI's ``sliding_window_inference``, the reference implementation, rather than our own) over
an image whose borders are mirrored first, as the U-Net paper does."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference

if TYPE_CHECKING:  # the module evaluates through window_logits: a runtime import would cycle
    from src.models.segmentation import SegmentationModule


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
    border: int = 16,
    input_scale: float = 1.0,
) -> torch.Tensor:
    """Class probabilities (K, H, W) for one image (C, H, W) in [0, 1].

    ``roi_size`` None predicts the whole image in one window; otherwise square tiles of that side
    overlap by ``overlap`` and are blended with a Gaussian weight. ``border`` pixels of mirrored
    image surround it first, so tiles at the edge see context. ``input_scale`` resizes the image
    first (e.g. 0.25 for a net trained on 512 px images resized to 128) and the probabilities back.
    """
    x = image[None].to(module.device, torch.float32)
    height, width = x.shape[-2:]
    if input_scale != 1.0:
        x = F.interpolate(x, scale_factor=input_scale, mode="bilinear", antialias=True, align_corners=False)
    logits = window_logits(module.predict_logits, x, roi_size, overlap, batch_size, border)
    probabilities = module.probabilities(logits)
    if input_scale != 1.0:
        probabilities = F.interpolate(probabilities, size=(height, width), mode="bilinear", align_corners=False)
    return probabilities[0].cpu()


def window_logits(
    logits_of: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, roi_size: int | None, overlap: float = 0.25, batch_size: int = 4, border: int = 16
) -> torch.Tensor:
    """Logits (N, K, H, W) of images (N, C, H, W) through ``logits_of`` in square tiles of side
    ``roi_size`` (None: one window), over the images mirrored by ``border`` pixels: the path of
    both :func:`predict_probabilities` and a model evaluated on whole images (``data.crop_size``)."""
    border = min(border, images.shape[-2] - 1, images.shape[-1] - 1)
    x = F.pad(images, (border,) * 4, mode="reflect") if border > 0 else images
    roi = (roi_size, roi_size) if roi_size else tuple(x.shape[-2:])
    logits = sliding_window_inference(x, roi, batch_size, logits_of, overlap=overlap, mode="gaussian", padding_mode="reflect")
    return logits[..., border:-border, border:-border] if border > 0 else logits
