"""Test-time distribution shifts, each at severities 1..3 (0 is the identity).

A shift maps one item, an image (C, H, W) float in [0, 1] and its target (as the data set stores
it: (1, H, W) float or (H, W) long), to a shifted pair. Geometric shifts move the target with the
image; the others leave it unchanged. Every draw comes from the generator passed in, so a shift
is deterministic for (seed, image, shift, severity) (see :func:`item_generator`).
torchvision.transforms.v2 ops are used where they exist (noise, blur, contrast, JPEG, elastic).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

Shift = Callable[[torch.Tensor, torch.Tensor, int, np.random.Generator], tuple[torch.Tensor, torch.Tensor]]
SEVERITIES = (1, 2, 3)


def item_generator(seed: int, image: int, shift: str, severity: int) -> np.random.Generator:
    """The generator of one shifted item: a function of (seed, image, shift, severity) only."""
    return np.random.default_rng([seed, image, zlib.crc32(shift.encode()), severity])


def _torch_seeded(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**62))


def gaussian_noise(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    sigma = (0.0, 0.05, 0.1, 0.2)[severity]
    if not sigma:
        return image, target
    noise = torch.from_numpy(rng.standard_normal(image.shape)).to(image.dtype)
    return (image + sigma * noise).clamp(0.0, 1.0), target


def gaussian_blur(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # sigma as a share of the shorter side, so a 32 px and a 512 px image lose the same detail
    sigma = (0.0, 0.01, 0.02, 0.04)[severity] * min(image.shape[-2:])
    if not sigma:
        return image, target
    kernel = min(2 * math.ceil(3 * sigma) + 1, 2 * (min(image.shape[-2:]) // 2) - 1)
    return TF.gaussian_blur(image, [kernel, kernel], [sigma, sigma]), target


def contrast(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    factor = (1.0, 0.6, 0.4, 0.2)[severity]
    if image.shape[0] not in (1, 3):  # adjust_contrast knows gray and RGB only
        mean = image.mean((1, 2), keepdim=True)
        return (mean + factor * (image - mean)).clamp(0.0, 1.0), target
    return TF.adjust_contrast(image, factor), target


def brightness(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return (image + (0.0, 0.1, 0.2, 0.3)[severity]).clamp(0.0, 1.0), target


def jpeg(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    quality = (None, 30, 15, 5)[severity]
    if quality is None or image.shape[0] not in (1, 3):
        return image, target
    encoded = TF.jpeg(image.mul(255).round().to(torch.uint8), quality)
    return encoded.float() / 255.0, target


def background_of(target: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: the background pixels of a stored target (class 0, or < 0.5 for one channel)."""
    return target[0] < 0.5 if target.is_floating_point() else target.reshape(target.shape[-2:]) == 0


def occlusion(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """1, 2 or 4 bars an eighth of the side wide, across the image, of a random grey; the target
    is unchanged (the object is still there behind the bar)."""
    out = image.clone()
    height, width = image.shape[-2:]
    for _ in range((0, 1, 2, 4)[severity]):
        grey = float(rng.random())
        if rng.random() < 0.5:
            size = max(1, height // 8)
            start = int(rng.integers(0, height - size + 1))
            out[:, start : start + size, :] = grey
        else:
            size = max(1, width // 8)
            start = int(rng.integers(0, width - size + 1))
            out[:, :, start : start + size] = grey
    return out, target


def clutter(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """1, 2 or 4 distractor shapes (ellipses and rectangles, a sixth to a third of the side) in
    the foreground's grey levels, painted over background pixels only: the target stays
    background there. This is the content a reduced training set no longer shows."""
    background = background_of(target)
    height, width = image.shape[-2:]
    foreground = ~background
    # the foreground's mean colour (the brightest tenth of the image when it has none)
    colour = image[:, foreground].mean(1) if foreground.any() else image.flatten(1).quantile(0.9, dim=1)
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    out = image.clone()
    for _ in range((0, 1, 2, 4)[severity]):
        ry, rx = (float(rng.uniform(1 / 12, 1 / 6)) * s for s in (height, width))
        cy, cx = float(rng.uniform(0, height)), float(rng.uniform(0, width))
        if rng.random() < 0.5:
            shape = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        else:
            shape = ((yy - cy).abs() <= ry) & ((xx - cx).abs() <= rx)
        paint = shape & background
        out[:, paint] = colour[:, None].to(out.dtype)
    return out, target


def off_centre(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Translation by 15, 30 or 45% of the side in a random direction, borders reflected (the
    original study's shift augmentation fill); the target moves with the image."""
    fraction = (0.0, 0.15, 0.3, 0.45)[severity]
    if not fraction:
        return image, target
    height, width = image.shape[-2:]
    angle = float(rng.uniform(0, 2 * math.pi))
    dy, dx = round(fraction * height * math.sin(angle)), round(fraction * width * math.cos(angle))
    return _translate(image, dy, dx), _translate(target, dy, dx)


def _translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` (..., H, W) moved down by dy and right by dx (|d| < the side), reflected in."""
    height, width = x.shape[-2:]
    pad_y, pad_x = abs(dy), abs(dx)
    padded = F.pad(x.reshape(-1, 1, height, width).double(), (pad_x, pad_x, pad_y, pad_y), mode="reflect")
    top, left = pad_y - dy, pad_x - dx
    return padded[..., top : top + height, left : left + width].to(x.dtype).reshape(x.shape)


def elastic(image: torch.Tensor, target: torch.Tensor, severity: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's elastic deformation (alpha 25, 50, 100; sigma 5), applied jointly: the
    target is warped with nearest-neighbour sampling."""
    alpha = (0.0, 25.0, 50.0, 100.0)[severity]
    if not alpha:
        return image, target
    mask = tv_tensors.Mask(target if target.ndim == 3 else target[None])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_torch_seeded(rng))
        warped, warped_mask = v2.ElasticTransform(alpha=alpha, sigma=5.0)(tv_tensors.Image(image), mask)
    return warped.as_subclass(torch.Tensor), warped_mask.as_subclass(torch.Tensor).reshape(target.shape)


SHIFTS: dict[str, Shift] = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "jpeg": jpeg,
    "occlusion": occlusion,
    "clutter": clutter,
    "off_centre": off_centre,
    "elastic": elastic,
}
