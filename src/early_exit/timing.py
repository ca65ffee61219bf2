"""Wall-clock timing of an early-exit policy against the full network, at batch size 1."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from src.early_exit.measurements import ExitMeasurements
from src.early_exit.policies import POLICIES, Policy, Threshold, early_exit_predict
from src.early_exit.thresholds import OperatingPoint
from src.models.early_exit import EarlyExitClassifier

log = logging.getLogger(__name__)


def wall_clock(
    module: EarlyExitClassifier, images: torch.Tensor, policy: Policy, threshold: Threshold, method: str, temperatures: list[float] | None = None
) -> tuple[float, float]:
    """Mean seconds per image at batch size 1: the early-exit policy vs the full network."""
    module.eval()
    with torch.no_grad():
        for image in images[:10]:  # warm-up: first calls allocate and pick kernels
            module(image[None])
            early_exit_predict(module, image[None], policy, threshold, method, temperatures)
        start = time.perf_counter()
        for image in images:
            module(image[None])
        full = (time.perf_counter() - start) / len(images)
        start = time.perf_counter()
        for image in images:
            early_exit_predict(module, image[None], policy, threshold, method, temperatures)
        early = (time.perf_counter() - start) / len(images)
    return early, full


@dataclass
class Timing:
    """Mean wall-clock milliseconds per image at batch size 1 of the best deployable policy."""

    policy: str
    early_ms: float
    full_ms: float


def time_best(module: EarlyExitClassifier, measured: ExitMeasurements, chosen: dict[str, OperatingPoint], saliency_method: str, samples: int) -> Timing | None:
    """Wall-clock the deployable policy (no oracle) that saves the most FLOPs on test."""
    deployable = {n: c for n, c in chosen.items() if not POLICIES[n].oracle}
    if not deployable:
        return None
    best = max(deployable, key=lambda n: deployable[n].test_flops_saving)
    images = measured.test_images[:samples].to(module.device)
    temperatures = measured.test.temperatures.tolist()
    early, full = wall_clock(module, images, POLICIES[best], deployable[best].threshold_of(POLICIES[best]), saliency_method, temperatures)
    log.info("best deployable policy: %s", best)
    return Timing(best, early * 1e3, full * 1e3)
