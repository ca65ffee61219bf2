"""Per-pixel relevance of a segmentation model's training images (docs/background.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt, gaussian_filter
from torch import nn

from src.config.schemas.reduction import CUE_ORACLE, OBJECT_PRIOR, ORACLE, RANDOM_METHODS
from src.saliency.attribution import attribute, coarsest_conv


@dataclass(frozen=True)
class RelevanceConfig:
    method: str = "prediction"
    background_class: int = 0
    ig_steps: int = 16
    smoothgrad_samples: int = 8
    smoothgrad_stdev: float = 0.1
    seed: int = 0  # the random controls' draws: (seed, round, image)
    smooth_scale: float = 0.1  # random_smooth: the Gaussian's sigma as a fraction of the image's shorter side
    oracle_margin: int = 2  # oracle: the ground-truth objects dilated by this many pixels rank first, then the rest by distance
    randomised_model: bool = False  # the maps of the model with every layer re-drawn (Adebayo et al. 2018's sanity check)


def random_relevance(ids: torch.Tensor, height: int, width: int, seed: int, round_: int, smooth_scale: float | None = None) -> torch.Tensor:
    """(N, H, W) i.i.d. uniform relevance for the images ``ids``, drawn from (seed, round, image)
    alone: the same on every DDP rank, after a resume and for any batch size. With
    ``smooth_scale`` the field is Gaussian-smoothed (sigma = smooth_scale x the shorter side)."""
    maps = []
    for image in ids.tolist():
        field = np.random.default_rng([seed, round_, image]).random((height, width))
        if smooth_scale is not None:
            field = gaussian_filter(field, sigma=smooth_scale * min(height, width), mode="reflect")
        maps.append(field)
    return torch.from_numpy(np.stack(maps)).float() if maps else torch.empty(0, height, width)


def object_pixels(targets: torch.Tensor, background_class: int = 0) -> torch.Tensor:
    """(N, H, W) bool: the ground-truth objects of (N, H, W) class maps (every class but
    ``background_class``) or (N, 1, H, W) values in [0, 1] (above 0.5)."""
    return targets[:, 0] > 0.5 if targets.ndim == 4 else targets != background_class


def oracle_relevance(targets: torch.Tensor, ids: torch.Tensor, seed: int, round_: int, margin: int, background_class: int = 0) -> torch.Tensor:
    """(N, H, W) relevance from the ground truth, a perfect map's ranking: every pixel within
    ``margin`` (Euclidean) of a non-background target pixel first (the object and a ring), then
    the rest by their distance to the nearest object pixel, nearest first. Pixels at the same
    distance (and all of the first group) are ordered at random from (seed, round, image), so the
    quota stays exact and the ties are the same on every rank and after a resume. An image
    without an object is ranked at random. ``targets``: (N, H, W) class indices or (N, 1, H, W)
    values in [0, 1] (foreground above 0.5). The values are ranks (higher first), not
    probabilities."""
    foreground = object_pixels(targets, background_class).cpu().numpy()
    order = random_relevance(ids, targets.shape[-2], targets.shape[-1], seed, round_)
    maps = []
    for image, ties in zip(foreground, order):
        # squared distances are integers: equal distances tie exactly
        squared = np.rint(distance_transform_edt(~image) ** 2) if image.any() else np.zeros(image.shape)
        squared[squared <= margin**2] = 0
        # dense rank of the distance (0 nearest): well inside float32's exact integers
        rank = np.unique(squared, return_inverse=True)[1].reshape(image.shape)
        maps.append(-torch.from_numpy(rank).float() + 0.5 * ties)
    return (torch.stack(maps) if maps else torch.empty(0, *targets.shape[-2:])).to(targets.device)


def cue_oracle_relevance(
    targets: torch.Tensor, cue: torch.Tensor, ids: torch.Tensor, seed: int, round_: int, margin: int, background_class: int = 0
) -> torch.Tensor:
    """(N, H, W) the oracle's ranking (:func:`oracle_relevance`) with every pixel of the known cue
    ((N, H, W) bool ``cue``) below every other pixel of its image: a round removes the cue before
    anything else, then keeps by distance to the object as the oracle does."""
    ranked = oracle_relevance(targets, ids, seed, round_, margin, background_class)
    span = (ranked.amax(dim=(1, 2)) - ranked.amin(dim=(1, 2)) + 1.0).view(-1, 1, 1)
    return ranked - span * cue.to(ranked.device, ranked.dtype)


def object_prior_relevance(module: nn.Module, images: torch.Tensor, ids: torch.Tensor, seed: int, round_: int, background_class: int = 0) -> torch.Tensor:
    """(N, H, W) a label-free object prior: the oracle's ranking (:func:`oracle_relevance`, no
    margin) of the model's own predicted foreground (foreground probability above 0.5, as the
    ``prediction`` map reads it) instead of the ground truth, so every pixel the model calls
    object first, then the background nearest to it."""
    with torch.no_grad():
        predicted = foreground_probability(module, images, background_class) > 0.5
    return oracle_relevance(predicted.long(), ids, seed, round_, margin=0)


@contextmanager
def randomised_weights(module: nn.Module, seed: tuple[int, int]) -> Iterator[None]:
    """Inside the block every layer of ``module`` has its weights re-drawn by its own
    initialisation (``reset_parameters``) from ``seed``: Adebayo et al.'s full randomisation of a
    trained model. The trained weights (and buffers) are put back afterwards, exactly."""
    saved = {name: value.detach().clone() for name, value in module.state_dict().items()}
    devices = [value.device.index or 0 for value in saved.values() if value.device.type == "cuda"][:1]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(np.random.SeedSequence(list(seed)).generate_state(1)[0]))
        for layer in module.modules():
            reset = getattr(layer, "reset_parameters", None)
            if layer is not module and callable(reset):
                reset()
    try:
        yield
    finally:
        module.load_state_dict(saved)


def foreground_probability(module: nn.Module, images: torch.Tensor, background_class: int) -> torch.Tensor:
    """The original study's relevance: softmax, then the summed probability of every non-background class
    (sigmoid probability for one-channel outputs, i.e. the output itself for eliret's regression)."""
    probs = module.probabilities(module(images))
    if probs.shape[1] == 1:
        return probs[:, 0]
    return 1.0 - probs[:, background_class]


class ForegroundScore(nn.Module):
    """Reduces a segmentation to one scalar per image for captum: the summed logits of the
    predicted class over every pixel predicted as foreground (the target is the model's own
    foreground prediction, fixed before attribution)."""

    def __init__(self, module: nn.Module, target_mask: torch.Tensor) -> None:
        super().__init__()
        self.module = module
        self.target_mask = target_mask  # (N, K, H, W) one-hot of predicted foreground classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.module(images)
        # captum's NoiseTunnel/IG repeat the batch; repeat the target to match
        repeats = logits.shape[0] // self.target_mask.shape[0]
        mask = self.target_mask.repeat(repeats, 1, 1, 1)
        return (logits * mask).sum((1, 2, 3)).unsqueeze(1)


def predicted_foreground(logits: torch.Tensor, background_class: int) -> torch.Tensor:
    if logits.shape[1] == 1:
        return (logits > 0).float()
    classes = logits.argmax(1)
    mask = nn.functional.one_hot(classes, logits.shape[1]).permute(0, 3, 1, 2).float()
    mask[:, background_class] = 0.0
    return mask


def relevance_maps(
    module: nn.Module,
    images: torch.Tensor,
    config: RelevanceConfig,
    ids: torch.Tensor | None = None,
    round_: int = 0,
    targets: torch.Tensor | None = None,
    cue: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, H, W) float relevance for one batch of (N, C, H, W) images; ``module`` in eval mode.
    ``ids`` (the images' training-set indices) and ``round_`` seed the random controls and the
    oracle's ties; ``targets`` (the batch's ground truth) is what the oracles read, ``cue``
    ((N, H, W) bool: the known cue's pixels) what the cue oracle reads too."""
    ids = torch.arange(len(images)) if ids is None else ids
    if config.randomised_model and config.method not in (*RANDOM_METHODS, ORACLE, CUE_ORACLE):
        with randomised_weights(module, (config.seed, round_)):
            return relevance_maps(module, images, replace(config, randomised_model=False), ids, round_, targets)
    if config.method == CUE_ORACLE:
        if targets is None or cue is None:
            raise ValueError("reduction.method=cue_oracle needs the images' ground truth and their cue's pixels")
        return cue_oracle_relevance(targets, cue, ids, config.seed, round_, config.oracle_margin, config.background_class)
    if config.method == OBJECT_PRIOR:
        return object_prior_relevance(module, images, ids, config.seed, round_, config.background_class)
    if config.method == ORACLE:
        if targets is None:
            raise ValueError("reduction.method=oracle needs the images' ground truth (targets)")
        return oracle_relevance(targets, ids, config.seed, round_, config.oracle_margin, config.background_class)
    if config.method in RANDOM_METHODS:
        scale = config.smooth_scale if config.method == "random_smooth" else None
        return random_relevance(ids, images.shape[-2], images.shape[-1], config.seed, round_, scale).to(images.device)
    if config.method == "prediction":
        with torch.no_grad():
            return foreground_probability(module, images, config.background_class)
    with torch.no_grad():
        target = predicted_foreground(module(images), config.background_class)
    score = ForegroundScore(module, target)
    layer = coarsest_conv(module, images[:1]) if config.method == "gradcam" else None
    with torch.enable_grad():
        return attribute(
            score,
            images,
            config.method,
            layer=layer,
            ig_steps=config.ig_steps,
            smoothgrad_samples=config.smoothgrad_samples,
            smoothgrad_stdev=config.smoothgrad_stdev,
        ).detach()
