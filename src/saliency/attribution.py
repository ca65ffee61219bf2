"""Input attributions through captum, for any model reduced to one scalar per sample."""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from torch import nn

from src.config.schemas.reduction import GRADIENT_METHODS


def attribute(
    score: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    method: str,
    layer: nn.Module | None = None,
    ig_steps: int = 16,
    smoothgrad_samples: int = 8,
    smoothgrad_stdev: float = 0.1,
) -> torch.Tensor:
    """(N, H, W) relevance of ``images`` (N, C, H, W) for ``score`` (N, C, H, W) -> (N, 1).

    gradient: |d score / d input| (captum Saliency), max over channels.
    integrated_gradients: |IG| from a black baseline, summed over channels.
    smoothgrad: gradient averaged over noisy copies of the input.
    gradcam: Grad-CAM at ``layer``, ReLU'd and upsampled bilinearly to the input size.
    """
    images = images.detach().clone().requires_grad_(True)
    if method == "gradient":
        attr = Saliency(score).attribute(images, target=0, abs=True)
        return attr.amax(1)
    if method == "integrated_gradients":
        attr = IntegratedGradients(score).attribute(images, baselines=torch.zeros_like(images), target=0, n_steps=ig_steps, internal_batch_size=len(images))
        return attr.abs().sum(1)
    if method == "smoothgrad":
        attr = NoiseTunnel(Saliency(score)).attribute(images, nt_type="smoothgrad", nt_samples=smoothgrad_samples, stdevs=smoothgrad_stdev, target=0, abs=True)
        return attr.amax(1)
    if method == "gradcam":
        if layer is None:
            raise ValueError("gradcam needs a layer")
        attr = LayerGradCam(score, layer).attribute(images, target=0, relu_attributions=True)
        return LayerAttribution.interpolate(attr, tuple(images.shape[-2:]), interpolate_mode="bilinear").sum(1)
    raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(GRADIENT_METHODS)}")


def coarsest_conv(net: nn.Module, sample: torch.Tensor) -> nn.Module:
    """The last Conv2d with the lowest output resolution (a U-Net's bottleneck): where Grad-CAM
    sees the most context. Found with one forward pass of ``sample``."""
    sizes: dict[nn.Module, int] = {}
    hooks = [
        m.register_forward_hook(lambda mod, _inp, out: sizes.__setitem__(mod, out.shape[-1] * out.shape[-2])) for m in net.modules() if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            net(sample)
    finally:
        for hook in hooks:
            hook.remove()
    if not sizes:
        raise ValueError(f"{type(net).__name__} has no Conv2d layer for Grad-CAM")
    smallest = min(sizes.values())
    return [m for m, size in sizes.items() if size == smallest][-1]
