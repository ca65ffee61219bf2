"""Scalar summaries of saliency maps (the original study's "trustworthy attention" signals)."""

from __future__ import annotations

import math

import torch


def as_distribution(maps: torch.Tensor) -> torch.Tensor:
    """(N, H, W) maps shifted to be >= 0 and scaled to sum to 1 per map (uniform if flat)."""
    flat = maps.flatten(1).double()
    flat = flat - flat.min(dim=1, keepdim=True).values
    total = flat.sum(dim=1, keepdim=True)
    uniform = torch.full_like(flat, 1.0 / flat.shape[1])
    return torch.where(total > 0, flat / total.clamp_min(1e-300), uniform).view_as(maps)


def spatial_entropy(maps: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of each normalised map divided by log(H*W): 0 = one pixel, 1 = uniform."""
    p = as_distribution(maps).flatten(1)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(1)
    return (entropy / math.log(p.shape[1])).float()


def moment_of_inertia(maps: torch.Tensor) -> torch.Tensor:
    """Second moment of each normalised map about its centroid, divided by the image's
    (H^2 + W^2) / 12 (a uniform map's value), so 0 = a point and 1 = spread like a uniform map."""
    p = as_distribution(maps)
    height, width = p.shape[-2:]
    ys = torch.arange(height, dtype=p.dtype).view(1, -1, 1)
    xs = torch.arange(width, dtype=p.dtype).view(1, 1, -1)
    cy = (p * ys).sum((1, 2), keepdim=True)
    cx = (p * xs).sum((1, 2), keepdim=True)
    inertia = (p * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum((1, 2))
    uniform = ((height**2 - 1) + (width**2 - 1)) / 12.0
    return (inertia / uniform).float()
