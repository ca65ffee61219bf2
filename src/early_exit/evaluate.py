"""Accuracy vs compute of every exit policy, the operating point chosen on validation, reported
on test; curves, plots and wall-clock timings in ``<run dir>/early_exit/``. The pieces: the FLOP
cost model (``costs``), the threshold sweep (``thresholds``), the measurements and choice
(``measurements``), the timing (``timing``) and the figures (``figures``); here the metrics,
the CSV files and the whole evaluation."""

from __future__ import annotations

from pathlib import Path

from src.early_exit.figures import plot_saliency, plot_signal_quality, plot_tradeoff
from src.early_exit.measurements import ExitMeasurements, choose_points, coherence_summary, measure_exits
from src.early_exit.policies import POLICIES
from src.early_exit.thresholds import OperatingPoint
from src.early_exit.timing import Timing, time_best
from src.models.early_exit import EarlyExitClassifier
from src.storage.results import write_csv_atomic


def exit_metrics(measured: ExitMeasurements, chosen: dict[str, OperatingPoint], timing: Timing | None) -> dict[str, float]:
    """The flat metrics for metrics.json and the loggers."""
    costs, calibration = measured.costs, measured.calibration
    metrics: dict[str, float] = {}
    for e, temperature in enumerate(calibration.temperatures):
        metrics[f"early_exit/temperature_exit{e}"] = temperature
        metrics[f"test/ece_exit{e}_before"] = calibration.ece_before[e]
        metrics[f"test/ece_exit{e}_after"] = calibration.ece_after[e]
    metrics["full_network_flops"] = float(costs.full_network)
    for e in range(len(costs.heads)):  # what a saliency map adds to the exit's own cost
        metrics[f"early_exit/saliency_cost_ratio_exit{e}"] = costs.cost_of_exit(POLICIES["saliency_entropy"], e) / costs.cost_of_exit(POLICIES["confidence"], e)
    for split, record in (("val", measured.val), ("test", measured.test)):
        for e in range(len(record.logits)):
            metrics[f"{split}/acc_exit{e}"] = measured.accuracy(split, e)
    metrics.update({f"test/{k}": v for k, v in coherence_summary(measured.test).items()})
    for row in measured.quality:
        metrics[f"test/auroc_exit{row['exit']}/{row['signal']}"] = row["auroc"]
        metrics[f"test/aurc_exit{row['exit']}/{row['signal']}"] = row["aurc"]
    for name, point in chosen.items():
        for key in ("threshold", "gate_threshold", "test_accuracy", "test_mean_flops", "test_flops_saving"):
            if getattr(point, key) is not None:
                metrics[f"early_exit/{name}/{key}"] = getattr(point, key)
    if timing is not None:
        metrics.update({"early_exit/wall_ms_early": timing.early_ms, "early_exit/wall_ms_full": timing.full_ms})
    return metrics


def write_exits(output_dir: Path, measured: ExitMeasurements, chosen: dict[str, OperatingPoint], timing: Timing | None) -> None:
    """curves.csv, chosen.csv, signal_quality.csv, calibration.csv and the three figures."""
    output_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(output_dir / "curves.csv", [{"split": "val", **r} for r in measured.val_rows] + [{"split": "test", **r} for r in measured.test_rows])
    rows = {name: point.row() for name, point in chosen.items()}
    if timing is not None:
        rows[timing.policy].update({"wall_ms_batch1": timing.early_ms, "wall_ms_full_batch1": timing.full_ms})
    write_csv_atomic(output_dir / "chosen.csv", [{"policy": n, **r} for n, r in rows.items()])
    write_csv_atomic(output_dir / "signal_quality.csv", measured.quality)
    calibration = measured.calibration
    write_csv_atomic(
        output_dir / "calibration.csv",
        [
            {"exit": e, "temperature": t, "test_ece_before": before, "test_ece_after": after}
            for e, (t, before, after) in enumerate(zip(calibration.temperatures, calibration.ece_before, calibration.ece_after))
        ],
    )
    plot_tradeoff(output_dir / "tradeoff.png", measured.test_rows, rows, measured.costs)
    plot_signal_quality(output_dir / "signal_quality.png", measured.quality)
    plot_saliency(output_dir / "saliency_exits.png", measured.test_images, measured.test)


def evaluate_exits(
    module: EarlyExitClassifier,
    val_loader,
    test_loader,
    output_dir: Path,
    saliency_method: str,
    max_accuracy_drop: float,
    timing_samples: int,
) -> dict[str, float]:
    """The whole early-exit evaluation: measure, choose on validation, time the best policy, and
    write ``output_dir`` (curves.csv: every policy x threshold, val and test; chosen.csv: each
    policy's operating point chosen on validation, reported on test; signal_quality.csv: AUROC and
    AURC of every signal at every exit; calibration.csv: temperature and ECE per exit; tradeoff.png,
    signal_quality.png, saliency_exits.png). Returns the flat metrics for metrics.json."""
    measured = measure_exits(module, val_loader, test_loader, saliency_method)
    chosen = choose_points(measured, max_accuracy_drop)
    timing = time_best(module, measured, chosen, saliency_method, timing_samples)
    write_exits(output_dir, measured, chosen, timing)
    return exit_metrics(measured, chosen, timing)
