"""One reduction round without a model: what the model-free methods (the random controls and the
oracle) keep of a training set and how much of a known cue survives their fill. A benchmark's
set and keep fraction are checked with it before any training (``python -m src.pilot``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from src.config.schemas.reduction import CUE_ORACLE, ORACLE, RANDOM_METHODS
from src.data.segmentation_dataset import SegmentationTensors
from src.reduction.relevance import RelevanceConfig
from src.reduction.removal_measures import KnownCue
from src.reduction.round import filled, oracle_masks, removal_measures, shard_masks

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
    cue_parts = cue.training_cue() if cue is not None else None
    cue_pixels = None if cue_parts is None else (cue_parts[1] != 0).any(1)
    oracle = oracle_masks(targets, present, percentile, seed, 0, oracle_margin, background_class)
    rows: list[dict[str, float | str]] = []
    for method in (*methods, *((CUE_ORACLE,) if cue_pixels is not None and CUE_ORACLE not in methods else ())):
        config = RelevanceConfig(method=method, background_class=background_class, seed=seed, oracle_margin=oracle_margin)
        masks = (
            oracle
            if method == ORACLE
            else shard_masks(torch.nn.Identity(), images, present, percentile, config, len(images), targets=targets, cue=cue_pixels).masks
        )
        reduced = None if cue_parts is None else filled(images, masks, present, 0, len(images), fill, (seed, 1), impute_noise, torch.device("cpu"))
        rows.append({"method": method, **removal_measures(masks, present, oracle, targets, background_class, cue_parts, reduced)})
    return rows
