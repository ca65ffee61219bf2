"""The relevance pass: seconds of each reduction method over a training set against one training
epoch on the same data, its growth with the number of images, and the stored masks' bytes."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from bench.data import train_epoch
from bench.timing import interleaved, median
from src.config.schemas import net_config, with_defaults
from src.config.schemas.reduction import CUE_ORACLE, METHODS
from src.models.segmentation import SegmentationModule
from src.reduction import packed
from src.reduction.relevance import RelevanceConfig
from src.reduction.round import shard_masks

BATCH = 64  # the reduction's default relevance batch (conf/reduction/saliency.yaml)


def eliret_like(count: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random images with square masks: timing needs the shapes, not the content."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, size, size, generator=generator)
    masks = torch.zeros(count, 1, size, size)
    masks[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
    return images, masks


def unet_module() -> SegmentationModule:
    """The default eliret model (conf/model/unet.yaml): U-Net depth 3, width 16."""
    net = net_config("unet", depth=3, base_width=16)
    optimizer = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}
    return with_defaults(SegmentationModule, net=net, task="regression", in_channels=1, out_channels=1, optimizer=optimizer)


def training_epoch(module: SegmentationModule, images: torch.Tensor, masks: torch.Tensor, batch_size: int = 10) -> None:
    """One epoch of forward, backward and Adam steps: what a reduction round's fit repeats."""
    batches = DataLoader(list(zip(images, masks, strict=True)), batch_size=batch_size, shuffle=True)
    train_epoch(module, [{"image": x, "mask": y} for x, y in batches])


def relevance_pass(module: SegmentationModule, images: torch.Tensor, method: str, targets: torch.Tensor | None = None) -> torch.Tensor:
    """The reduction's own pass (``shard_masks``, one process): relevance, keep-masks at p=90
    (``targets``: the ground truth, which the oracles rank by; the cue oracle's cue: none, these
    images carry no cue, so it times the ranking alone)."""
    present = torch.ones(len(images), *images.shape[-2:], dtype=torch.bool)
    cue = torch.zeros_like(present) if method == CUE_ORACLE else None
    return shard_masks(module, images, present, 90.0, RelevanceConfig(method=method), BATCH, targets=targets, cue=cue).masks


def measure(repetitions: int, sizes: tuple[int, ...], methods: tuple[str, ...] = METHODS, train_images: int = 100) -> dict[str, object]:
    torch.manual_seed(0)
    module = unet_module()
    images, masks = eliret_like(train_images)
    arms = {"training_epoch": lambda: training_epoch(module, images, masks)}
    arms.update({method: (lambda m=method: relevance_pass(module, images, m, masks)) for method in methods})
    times = interleaved(arms, repetitions)
    epoch = median(times["training_epoch"])
    per_method = {m: {"seconds": median(times[m]), "vs_training_epoch": median(times[m]) / epoch} for m in methods}
    growth_arms = {}
    sets = {n: eliret_like(n, seed=n)[0] for n in sizes}
    for n in sizes:
        growth_arms[str(n)] = lambda x=sets[n]: relevance_pass(module, x, "prediction")
    growth_times = interleaved(growth_arms, repetitions)
    growth = {n: {"seconds": median(growth_times[str(n)]), "ms_per_image": 1e3 * median(growth_times[str(n)]) / n} for n in sizes}
    kept = relevance_pass(module, sets[sizes[-1]], "prediction")
    return {
        "train_images": train_images,
        "image_size": 32,
        "training_epoch_s": epoch,
        "methods": per_method,
        "growth_prediction": growth,
        # ms per image at the largest size over the smallest: 1.0 is linear growth
        "growth_per_image_ratio": growth[sizes[-1]]["ms_per_image"] / growth[sizes[0]]["ms_per_image"],
        "mask_bytes_per_image": packed.bytes_per_image(kept),
        "mask_bytes_per_image_unpacked": float(kept[0].numel()),
    }
