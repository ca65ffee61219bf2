"""Keeping the most relevant pixels of each image and filling the rest."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import torch

from src.config.errors import TrainingDiverged
from src.config.schemas.reduction import FILLS, KEEPS
from src.data.segmentation_dataset import like_stored, to_unit
from src.reduction.blur import gaussian_blur
from src.reduction.imputation import impute

# the ignore index src.train gives a model for removed=ignore when the data set has none
REMOVED_TARGET = 255


def quota(percentile: float, n_present: int) -> int:
    """ceil(p/100 * n), computed exactly (no float rounding at integer boundaries)."""
    return math.ceil(Fraction(str(percentile)) * n_present / 100)


def keep_mask(relevance: torch.Tensor, present: torch.Tensor, percentile: float, keep: str = "most") -> torch.Tensor:
    """For each image keep the ceil(p/100 * n) most (``keep="least"``: least) relevant of its n
    present pixels.

    relevance: (N, H, W) float; present: (N, H, W) bool (pixels not removed yet). Ties are broken
    by pixel position (row-major, first wins), so the result is deterministic even for a
    constant map. A NaN anywhere is refused: it has no rank, and ranking it last would quietly
    remove pixels the model never judged. Returns a bool mask, a subset of ``present``.
    """
    n, height, width = relevance.shape
    nan = relevance.isnan().flatten(1).any(1)
    if nan.any():
        images = ", ".join(map(str, nan.nonzero().flatten().tolist()[:10]))
        raise TrainingDiverged(
            f"the relevance maps of {int(nan.sum())} of {n} images (batch positions {images}) contain NaN, so their pixels "
            "cannot be ranked. The model's outputs are not finite: lower model.optimizer.lr or check the data."
        )
    if keep not in KEEPS:
        raise ValueError(f"unknown keep {keep!r}; choose one of {', '.join(KEEPS)}")
    scores = relevance.double().flatten(1)
    if keep == "least":
        scores = -scores
    scores = scores.masked_fill(~present.flatten(1), -math.inf)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(height * width).expand(n, -1))
    quotas = torch.tensor([quota(percentile, int(c)) for c in present.flatten(1).sum(1)])
    return ((ranks < quotas[:, None]) & present.flatten(1)).view(n, height, width)


def fill_removed(
    images: torch.Tensor,
    keep: torch.Tensor,
    fill: str,
    noise_seeds: Sequence[Sequence[int]] | None = None,
    impute_noise: float = 0.01,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images (N, C, H, W) with the pixels outside ``keep`` (N, H, W) replaced.

    zero: 0 (the original study); mean: each image's per-channel mean; blur: a strong Gaussian blur of
    the image (kernel about a quarter of its side), so removed regions keep only coarse context;
    impute: ROAD's noisy linear imputation (no edge at the mask's border), its noise drawn per
    image from ``noise_seeds[i]`` (default: the image's position). On a canvas shared by images
    of several sizes, ``valid`` (N, H, W) marks each image's own pixels (the canvas's top-left
    h x w): impute solves only those, as if the image were alone, and leaves the padding as it is.
    """
    keep4 = keep.unsqueeze(1)
    if fill == "impute":
        seeds = noise_seeds if noise_seeds is not None else [(i,) for i in range(len(images))]
        owns = valid.cpu() if valid is not None else [None] * len(images)
        filled = [_impute_own_pixels(image, mask, own, impute_noise, seed) for image, mask, own, seed in zip(images.cpu(), keep.cpu(), owns, seeds)]
        return torch.stack(filled).to(images.dtype)
    if fill not in BACKGROUNDS:
        raise ValueError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")
    return torch.where(keep4, images, BACKGROUNDS[fill](images))


def _blurred(images: torch.Tensor) -> torch.Tensor:
    side = min(images.shape[-2:])
    kernel = max(3, (side // 4) | 1)
    return gaussian_blur(images, kernel, kernel / 3.0)


# what a removed pixel becomes, per fill that needs only the images (the impute fill also needs the
# keep-mask and its noise): a fill is its name in the schema's Fill plus an entry here
BACKGROUNDS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "zero": torch.zeros_like,
    "mean": lambda images: images.mean((2, 3), keepdim=True).expand_as(images),
    "blur": _blurred,
}


def _impute_own_pixels(image: torch.Tensor, keep: torch.Tensor, own: torch.Tensor | None, noise: float, seed: Sequence[int]) -> torch.Tensor:
    height, width = keep.shape
    if own is not None:
        height, width = int(own.any(1).sum()), int(own.any(0).sum())
        if int(own.sum()) != height * width or not own[:height, :width].all():
            raise ValueError("an image's own pixels must be the top-left corner of its canvas")
    out = image.to(torch.float64, copy=True)
    out[:, :height, :width] = torch.from_numpy(impute(out[:, :height, :width].numpy(), keep[:height, :width].numpy(), noise, np.random.default_rng(list(seed))))
    return out


def fill_stored(
    original: torch.Tensor,
    keep: torch.Tensor,
    fill: str,
    chunk: int = 256,
    noise_seed: Sequence[int] = (),
    impute_noise: float = 0.01,
    first: int = 0,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """``original`` images (uint8 or float, as a data set stores them) with the removed pixels
    filled, in the same type, a chunk at a time: a uint8 set is never held as float all at once.
    The impute fill's noise for image i is drawn from (``noise_seed``, ``first`` + i): ``first``
    is the position of ``original[0]`` in the whole set when this is one rank's share. ``valid``:
    each image's own pixels on a shared canvas (``fill_removed``)."""
    out = torch.empty_like(original)
    for start in range(0, len(out), chunk):
        part = slice(start, start + chunk)
        seeds = [(*noise_seed, first + i) for i in range(part.start, min(part.stop, len(out)))]
        own = None if valid is None else valid[part]
        out[part] = like_stored(fill_removed(to_unit(original[part]), keep[part], fill, seeds, impute_noise, own), out.dtype)
    return out
