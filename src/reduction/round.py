"""One reduction round's research steps, over tensors and a model: relevance maps and keep-masks
for a list of relevance batches, the oracle's masks, the fill of a range of images and what the
masks removed. Nothing here knows of ranks or Lightning's trainer: ``callback.py`` runs these
over each rank's share (the exchanges are in ``ranks.py``), and ``bench/relevance.py``
and ``src/reduction/pilot.py`` call them in one process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from src.data.segmentation_dataset import to_unit
from src.reduction.masking import fill_stored, keep_mask
from src.reduction.relevance import RelevanceConfig, oracle_relevance, relevance_maps
from src.reduction.removal_measures import cue_share, keep_iou, object_recall
from src.saliency.measures import moment_of_inertia, spatial_entropy

# images filled (and exchanged between ranks) at a time: a uint8 set is never held as float all at once
FILL_CHUNK = 256


@dataclass
class Shard:
    ids: torch.Tensor  # (M,) training-set indices
    masks: torch.Tensor  # (M, H, W) bool keep-masks
    entropy: torch.Tensor  # (M,) spatial entropy of each relevance map
    inertia: torch.Tensor  # (M,) moment of inertia of each relevance map
    first_relevance: torch.Tensor | None  # relevance of the first images (the batch at 0), if computed here


def shard_masks(
    module: nn.Module,
    images: torch.Tensor,
    present: torch.Tensor,
    percentile: float,
    config: RelevanceConfig,
    batch_size: int,
    starts: Sequence[int] | None = None,
    keep_relevance: int = 0,
    keep: str = "most",
    round_: int = 0,
    targets: torch.Tensor | None = None,
    progress: Callable[[int], None] | None = None,
    cue: torch.Tensor | None = None,
) -> Shard:
    """Keep-masks of the relevance batches of ``batch_size`` images that begin at ``starts``
    (default: every batch), each batch holding the images it holds in a one-process pass.
    ``targets`` (the training set's ground truth) is read by the oracles alone, ``cue`` (the known
    cue's pixels) by the cue oracle; ``progress`` is told each batch's size once it is done."""
    n, _, height, width = images.shape
    device = next(module.parameters(), torch.empty(0)).device  # a model-free method may pass a module without weights
    ids, masks, entropy, inertia, first = [], [], [], [], None
    was_training = module.training
    module.eval()
    try:
        for start in range(0, n, batch_size) if starts is None else starts:
            batch_ids = torch.arange(start, min(start + batch_size, n))
            batch_targets = None if targets is None else targets[batch_ids].to(device)
            batch_cue = None if cue is None else cue[batch_ids]
            relevance = relevance_maps(module, to_unit(images[batch_ids]).to(device), config, batch_ids, round_, batch_targets, batch_cue).float().cpu()
            masks.append(keep_mask(relevance, present[batch_ids], percentile, keep))
            entropy.append(spatial_entropy(relevance))
            inertia.append(moment_of_inertia(relevance))
            ids.append(batch_ids)
            if start == 0:
                first = relevance[:keep_relevance]
            if progress is not None:
                progress(len(batch_ids))
    finally:
        module.train(was_training)
    if not ids:  # no batch here (more ranks than batches)
        return Shard(torch.empty(0, dtype=torch.long), torch.empty(0, height, width, dtype=torch.bool), torch.empty(0), torch.empty(0), None)
    return Shard(torch.cat(ids), torch.cat(masks), torch.cat(entropy), torch.cat(inertia), first)


def oracle_masks(targets: torch.Tensor, present: torch.Tensor, percentile: float, seed: int, round_: int, margin: int, background_class: int) -> torch.Tensor:
    """What the oracle keeps (keep=most) of the ``present`` pixels in round ``round_`` (its ties
    included): the reference every arm's keep-masks are compared with."""
    parts = []
    for start in range(0, len(present), FILL_CHUNK):
        ids = torch.arange(start, min(start + FILL_CHUNK, len(present)))
        relevance = oracle_relevance(targets[ids], ids, seed, round_, margin, background_class)
        parts.append(keep_mask(relevance, present[ids], percentile))
    return torch.cat(parts)


def filled(
    original: torch.Tensor,
    masks: torch.Tensor,
    valid: torch.Tensor,
    start: int,
    stop: int,
    fill: str,
    noise_seed: Sequence[int],
    impute_noise: float,
    device: torch.device,
) -> torch.Tensor:
    """Images ``start``..``stop`` of ``original`` with the pixels outside their keep-masks filled,
    on ``device``; the impute noise of image i is drawn from (``noise_seed``, i), so any range
    equals the same rows of a fill of the whole set."""
    return fill_stored(
        original[start:stop].to(device),
        masks[start:stop].to(device),
        fill,
        noise_seed=noise_seed,
        impute_noise=impute_noise,
        first=start,
        valid=valid[start:stop].to(device),
    )


def removal_measures(
    masks: torch.Tensor,
    valid: torch.Tensor,
    oracle: torch.Tensor | None,
    targets: torch.Tensor,
    background_class: int,
    cue: tuple[torch.Tensor, torch.Tensor] | None = None,
    images: torch.Tensor | None = None,
) -> dict[str, float]:
    """A round's model-free measures of what its masks removed: the kept fraction of each image's
    own pixels, the keep-masks' IoU with the oracle's (``oracle`` None: these are the oracle's),
    the share of object pixels kept and, given the set's known ``cue`` and the filled ``images``,
    the share of the cue the fill left."""
    row = {
        "kept_fraction": (masks.flatten(1).sum(1) / valid.flatten(1).sum(1)).mean().item(),
        "oracle_keep_iou": 1.0 if oracle is None else keep_iou(masks, oracle).mean().item(),
        "object_recall": object_recall(masks, targets, background_class).nanmean().item(),
    }
    if cue is not None and images is not None:
        row["cue_share"] = cue_share(to_unit(images), *cue).nanmean().item()
    return row


def ignoring_removed(targets: torch.Tensor, keep: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """``targets`` ((N, H, W) classes or (N, 1, H, W) values) with every pixel outside ``keep``
    (N, H, W) set to ``ignore_index``."""
    keep = keep.unsqueeze(1) if targets.ndim == 4 else keep
    return torch.where(keep, targets, torch.full_like(targets, ignore_index))


def reinitialise(module: nn.Module, optimizers: Sequence[torch.optim.Optimizer], seed: int) -> None:
    """Fresh weights for a new round (every submodule's own initialisation) and fresh optimizer
    state, drawn from ``seed``: every DDP rank draws the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for part in module.modules():
            reset = getattr(part, "reset_parameters", None)
            if part is not module and callable(reset):
                reset()
    for optimizer in optimizers:
        optimizer.state.clear()
