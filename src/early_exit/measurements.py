"""What the early-exit evaluation measures before it chooses (both splits' exits, calibration, FLOPs,
the sweep, each signal's quality), and the operating point each policy gets from validation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from src.config.errors import UserInputError
from src.early_exit.calibration import expected_calibration_error, fit_temperature
from src.early_exit.costs import ExitCosts, measure_costs
from src.early_exit.quality import signal_quality
from src.early_exit.scores import SALIENCY_METHODS, ExitRecord, cosine, record_exits, unit_range
from src.early_exit.thresholds import OperatingPoint, available, choose, operating_point, sweep
from src.models.early_exit import EarlyExitClassifier


@dataclass
class Calibration:
    """One temperature per exit, fitted on validation, and each exit's test ECE before and after."""

    temperatures: list[float]
    ece_before: list[float]
    ece_after: list[float]


def calibrate(val: ExitRecord, test: ExitRecord) -> Calibration:
    """Fit one temperature per exit on validation, set it on both records, and measure each
    exit's test ECE before and after."""
    temperatures = torch.tensor([fit_temperature(val.logits[e], val.labels) for e in range(len(val.logits))])
    val.temperatures = test.temperatures = temperatures
    values = temperatures.tolist()
    before = [expected_calibration_error(test.logits[e], test.labels) for e in range(len(values))]
    after = [expected_calibration_error(test.logits[e], test.labels, t) for e, t in enumerate(values)]
    return Calibration(values, before, after)


def coherence_summary(record: ExitRecord) -> dict[str, float]:
    """Mean cosine similarity and SSIM of each exit's map with the final exit's map."""
    out = {}
    final = unit_range(record.maps[-1]).unsqueeze(1)
    for e in range(len(record.maps)):
        out[f"cosine_exit{e}_final"] = cosine(record.maps[e], record.maps[-1]).mean().item()
        maps = unit_range(record.maps[e]).unsqueeze(1)
        out[f"ssim_exit{e}_final"] = structural_similarity_index_measure(maps, final, data_range=1.0).item()
    return out


@dataclass
class ExitMeasurements:
    """Everything the evaluation measures before choosing: both splits' exits, their calibration,
    the FLOPs of each part, every policy x threshold on both splits, and each signal's quality."""

    val: ExitRecord
    test: ExitRecord
    test_images: torch.Tensor
    calibration: Calibration
    costs: ExitCosts
    val_rows: list[dict[str, object]]
    test_rows: list[dict[str, object]]
    quality: list[dict[str, object]]

    def accuracy(self, split: str, e: int) -> float:
        record = self.val if split == "val" else self.test
        return (record.predictions[e] == record.labels).float().mean().item()


def measure_exits(module: EarlyExitClassifier, val_loader, test_loader, saliency_method: str) -> ExitMeasurements:
    """Record every exit on validation and test, calibrate, count FLOPs, sweep every policy's
    thresholds and rate every signal."""
    if saliency_method not in SALIENCY_METHODS:
        raise UserInputError(f"early_exit.saliency_method={saliency_method!r}; choose one of {', '.join(SALIENCY_METHODS)}.")
    val, test = record_exits(module, val_loader, saliency_method), record_exits(module, test_loader, saliency_method)
    calibration = calibrate(val, test)
    test_images = torch.cat([b["image"] for b in test_loader])
    costs = measure_costs(module, test_images[:1].to(module.device), saliency_method)
    quality = signal_quality(test.signals(), test.predictions, test.labels)
    return ExitMeasurements(val, test, test_images, calibration, costs, sweep(val, costs), sweep(test, costs), quality)


def choose_points(measured: ExitMeasurements, max_accuracy_drop: float) -> dict[str, OperatingPoint]:
    """Each policy's cheapest threshold within ``max_accuracy_drop`` of the final exit's validation
    accuracy, reported on test; a policy no threshold satisfies is left out."""
    final_val = measured.accuracy("val", len(measured.val.logits) - 1)
    signals = measured.test.signals()
    chosen: dict[str, OperatingPoint] = {}
    for policy in available(measured.test):
        pick = choose(measured.val_rows, policy.name, final_val, max_accuracy_drop)
        if pick is None:
            continue
        point = operating_point(measured.test, signals, measured.costs, policy, pick["threshold"])
        main, gate = (pick["threshold"], None) if policy.gate is None else pick["threshold"]
        fractions = [point[f"exit{e}_fraction"] for e in range(len(measured.costs.heads))]
        chosen[policy.name] = OperatingPoint(main, gate, pick["accuracy"], point["accuracy"], point["mean_flops"], point["flops_saving"], fractions)
    return chosen
