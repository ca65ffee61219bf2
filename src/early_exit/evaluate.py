"""Accuracy vs compute of every exit policy, the operating point chosen on validation, reported
on test; curves, plots and wall-clock timings in ``<run dir>/early_exit/``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchmetrics.functional.image import structural_similarity_index_measure

from src.config.errors import UserInputError
from src.early_exit.calibration import expected_calibration_error, fit_temperature
from src.early_exit.policies import POLICIES, Policy, Threshold, early_exit_predict, exit_indices
from src.early_exit.quality import signal_quality
from src.early_exit.scores import SALIENCY_METHODS, ExitRecord, cosine, exit_saliency, record_exits, unit_range
from src.loggers.figures import save_figure, subplots
from src.models.early_exit import EarlyExitClassifier
from src.storage.results import write_csv_atomic

log = logging.getLogger(__name__)


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@dataclass
class ExitCosts:
    """FLOPs per sample (batch of one): stage i, exit head k, saliency map at exit k."""

    stages: list[int]
    heads: list[int]
    saliency: list[int]
    exit_stages: list[int]

    @property
    def full_network(self) -> int:
        """A plain network: every stage and the final head only."""
        return sum(self.stages) + self.heads[-1]

    def cost_of_exit(self, policy: Policy, e: int) -> int:
        """Compute spent on a sample that leaves at exit e: its stages, every head it passed,
        and for saliency policies every map needed for a decision (none at the final exit).
        The oracle pays the full network with every map."""
        k = len(self.heads)
        if policy.oracle:
            return sum(self.stages) + sum(self.heads) + sum(self.saliency)
        cost = sum(self.stages[: self.exit_stages[e] + 1]) + sum(self.heads[: e + 1])
        if policy.uses_saliency:
            cost += sum(self.saliency[: min(e + 1, k - 1)])
        return cost


def measure_costs(module: EarlyExitClassifier, sample: torch.Tensor, method: str) -> ExitCosts:
    """``sample``: one raw image (1, C, H, W). Counted with torch.utils.flop_counter; a CAM is
    counted on the head features the exit computed anyway (its only cost is the map itself)."""
    net = module.net
    module.eval()
    stages, x = [], module.net_input(sample)
    with torch.no_grad():
        for stage in net.stages:
            stages.append(_flops(lambda stage=stage, x=x: stage(x)))
            x = stage(x)
        features, x = [], module.net_input(sample)
        for stage in net.stages:
            x = stage(x)
            features.append(x)
        heads = [_flops(lambda k=k, s=s: net.heads[k](features[s])) for k, s in enumerate(net.exit_stages)]
        head_features = [net.heads[k].conv(features[s]) for k, s in enumerate(net.exit_stages)]
        target = torch.zeros(1, dtype=torch.long, device=sample.device)
        saliency = [_flops(lambda k=k: exit_saliency(module, sample, k, target, method, head_features=head_features[k])) for k in range(net.num_exits)]
    return ExitCosts(stages, heads, saliency, list(net.exit_stages))


def _quantiles(signal: torch.Tensor, count: int) -> list[float]:
    """The signal's quantiles at the early exits, plus both extremes (always / never exit)."""
    values = signal[:-1][torch.isfinite(signal[:-1])]
    if not len(values):
        return [float("inf"), float("-inf")]
    quantiles = torch.quantile(values.double(), torch.linspace(0, 1, count, dtype=torch.float64)).tolist()
    return sorted(set(quantiles) | {float("inf"), float("-inf")})


def thresholds_for(policy: Policy, signals: dict[str, torch.Tensor]) -> list[Threshold]:
    """Candidate thresholds: 201 quantiles of the signal; a gated policy, every pair of 21 x 21
    quantiles of its two signals (chosen jointly)."""
    if policy.gate is None:
        return _quantiles(signals[policy.signal_name], 201)
    return [(t, g) for t in _quantiles(signals[policy.signal_name], 21) for g in _quantiles(signals[policy.gate], 21)]


def operating_point(record: ExitRecord, signals: dict[str, torch.Tensor], costs: ExitCosts, policy: Policy, threshold: Threshold) -> dict[str, float]:
    exits = exit_indices(policy, signals, threshold)
    predictions = record.predictions.gather(0, exits[None])[0]
    per_exit_cost = torch.tensor([costs.cost_of_exit(policy, e) for e in range(len(costs.heads))], dtype=torch.float64)
    flops = per_exit_cost[exits].mean().item()
    row = {
        "accuracy": (predictions == record.labels).float().mean().item(),
        "mean_flops": flops,
        "flops_saving": 1.0 - flops / costs.full_network,
    }
    for e in range(len(costs.heads)):
        row[f"exit{e}_fraction"] = (exits == e).float().mean().item()
    return row


def available(record: ExitRecord) -> list[Policy]:
    """Every policy, less the calibrated ones when no temperatures were fitted."""
    return [p for p in POLICIES.values() if record.temperatures is not None or not p.calibrated]


def sweep(record: ExitRecord, costs: ExitCosts) -> list[dict[str, object]]:
    signals = record.signals()
    rows = []
    for policy in available(record):
        for threshold in thresholds_for(policy, signals):
            rows.append({"policy": policy.name, "threshold": threshold, **operating_point(record, signals, costs, policy, threshold)})
    return rows


def choose(val_rows: list[dict[str, object]], policy: str, final_accuracy: float, max_drop: float) -> dict[str, object] | None:
    """The cheapest threshold whose validation accuracy is within ``max_drop`` of the final exit's."""
    allowed = [r for r in val_rows if r["policy"] == policy and r["accuracy"] >= final_accuracy - max_drop]
    return min(allowed, key=lambda r: (r["mean_flops"], -r["accuracy"])) if allowed else None


def coherence_summary(record: ExitRecord) -> dict[str, float]:
    """Mean cosine similarity and SSIM of each exit's map with the final exit's map."""
    out = {}
    final = unit_range(record.maps[-1]).unsqueeze(1)
    for e in range(len(record.maps)):
        out[f"cosine_exit{e}_final"] = cosine(record.maps[e], record.maps[-1]).mean().item()
        maps = unit_range(record.maps[e]).unsqueeze(1)
        out[f"ssim_exit{e}_final"] = structural_similarity_index_measure(maps, final, data_range=1.0).item()
    return out


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


def plot_tradeoff(path: Path, test_rows: list[dict[str, object]], chosen: dict[str, dict], costs: ExitCosts) -> None:
    fig, ax = subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["policy"] for r in test_rows):
        rows = sorted((r for r in test_rows if r["policy"] == name), key=lambda r: r["mean_flops"])
        ax.plot([r["mean_flops"] / 1e6 for r in rows], [r["accuracy"] for r in rows], label=name, linewidth=1.2)
        if name in chosen:
            ax.scatter([chosen[name]["test_mean_flops"] / 1e6], [chosen[name]["test_accuracy"]], s=25)
    ax.axvline(costs.full_network / 1e6, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("mean MFLOPs per sample (dotted: full network)")
    ax.set_ylabel("test accuracy")
    ax.set_title("early exit: accuracy vs compute (dots: thresholds chosen on validation)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_saliency(path: Path, images: torch.Tensor, record: ExitRecord, count: int = 6) -> None:
    k = len(record.maps)
    count = min(count, len(images))
    fig, axes = subplots(count, k + 1, figsize=(1.8 * (k + 1), 1.8 * count), squeeze=False)
    for i in range(count):
        image = images[i].float().clamp(0, 1)
        axes[i, 0].imshow(image[0] if image.shape[0] == 1 else image.permute(1, 2, 0), cmap="gray")
        for e in range(k):
            axes[i, e + 1].imshow(record.maps[e, i], cmap="inferno")
            if i == 0:
                axes[i, e + 1].set_title(f"exit {e}", fontsize=9)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)


def calibrate(val: ExitRecord, test: ExitRecord) -> Calibration:
    """Fit one temperature per exit on validation, set it on both records, and measure each
    exit's test ECE before and after."""
    temperatures = torch.tensor([fit_temperature(val.logits[e], val.labels) for e in range(len(val.logits))])
    val.temperatures = test.temperatures = temperatures
    values = temperatures.tolist()
    before = [expected_calibration_error(test.logits[e], test.labels) for e in range(len(values))]
    after = [expected_calibration_error(test.logits[e], test.labels, t) for e, t in enumerate(values)]
    return Calibration(values, before, after)


def plot_signal_quality(path: Path, rows: list[dict[str, object]]) -> None:
    fig, (left, right) = subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["signal"] for r in rows):
        mine = [r for r in rows if r["signal"] == name]
        left.plot([r["exit"] for r in mine], [r["auroc"] for r in mine], marker="o", label=name)
        right.plot([r["exit"] for r in mine], [r["aurc"] for r in mine], marker="o", label=name)
    left.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    left.set(xlabel="exit", ylabel="AUROC (right vs wrong), test", title="higher: ranks errors last")
    right.set(xlabel="exit", ylabel="AURC, test", title="lower: less risk at every coverage")
    left.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


@dataclass
class Calibration:
    """One temperature per exit, fitted on validation, and each exit's test ECE before and after."""

    temperatures: list[float]
    ece_before: list[float]
    ece_after: list[float]


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


@dataclass
class OperatingPoint:
    """A policy's threshold chosen on validation, and what it gives on test."""

    threshold: float
    gate_threshold: float | None
    val_accuracy: float
    test_accuracy: float
    test_mean_flops: float
    test_flops_saving: float
    test_exit_fractions: list[float]

    def row(self) -> dict[str, object]:
        fields = {k: v for k, v in vars(self).items() if k != "test_exit_fractions"}
        return {**fields, **{f"test_exit{e}_fraction": f for e, f in enumerate(self.test_exit_fractions)}}

    def threshold_of(self, policy: Policy) -> Threshold:
        return self.threshold if policy.gate is None else (self.threshold, self.gate_threshold)


@dataclass
class Timing:
    """Mean wall-clock milliseconds per image at batch size 1 of the best deployable policy."""

    policy: str
    early_ms: float
    full_ms: float


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
