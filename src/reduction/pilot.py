"""One reduction round without a model: what the model-free methods (the random controls and the
oracle) keep of a training set and how much of a known cue survives their fill. A benchmark's
set and keep fraction are checked with it before any training (``python -m src.pilot``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from src.config.schemas.reduction import CUE_ORACLE, ORACLE, RANDOM_METHODS
from src.data.segmentation_dataset import SegmentationTensors, to_unit
from src.reduction.masking import fill_stored, keep_mask
from src.reduction.relevance import RelevanceConfig, relevance_maps
from src.reduction.removal_measures import KnownCue, cue_share, keep_iou, object_recall

MODEL_FREE = (*RANDOM_METHODS, ORACLE)


def model_free_round(
    dataset: SegmentationTensors,
    percentile: float,
    fill: str,
    impute_noise: float,
    seed: int,
    oracle_margin: int,
    background_class: int = 0,
    methods: Sequence[str] = MODEL_FREE,
    cue: KnownCue | None = None,
) -> list[dict[str, float | str]]:
    """A row per method: the kept fraction, the IoU of its keep-masks with the oracle's, the share
    of object pixels kept and (with ``cue``) the share of the cue left in the filled images, as
    the reduction's first round would compute them (round 0's draws of ``seed``); with ``cue`` the
    cue oracle too."""
    images, targets, present = dataset.images, dataset.masks, dataset.valid_pixels()
    ids = torch.arange(len(images))
    cue_parts = cue.training_cue() if cue is not None else None
    cue_pixels = None if cue_parts is None else (cue_parts[1] != 0).any(1)

    def masks_of(method: str) -> torch.Tensor:
        config = RelevanceConfig(method=method, background_class=background_class, seed=seed, oracle_margin=oracle_margin)
        relevance = relevance_maps(torch.nn.Identity(), to_unit(images), config, ids, 0, targets, cue_pixels)
        return keep_mask(relevance, present, percentile)

    oracle = masks_of(ORACLE)
    rows: list[dict[str, float | str]] = []
    for method in (*methods, *((CUE_ORACLE,) if cue_pixels is not None and CUE_ORACLE not in methods else ())):
        masks = oracle if method == ORACLE else masks_of(method)
        row: dict[str, float | str] = {
            "method": method,
            "kept_fraction": (masks.flatten(1).sum(1) / present.flatten(1).sum(1)).mean().item(),
            "oracle_keep_iou": keep_iou(masks, oracle).mean().item(),
            "object_recall": object_recall(masks, targets, background_class).nanmean().item(),
        }
        if cue_parts is not None:
            filled = fill_stored(images, masks, fill, noise_seed=(seed, 1), impute_noise=impute_noise, valid=present)
            row["cue_share"] = cue_share(to_unit(filled), *cue_parts).nanmean().item()
        rows.append(row)
    return rows
