"""Accuracy vs compute of every exit policy, the operating point chosen on validation, reported
on test; curves, plots and wall-clock timings in ``<run dir>/early_exit/``."""

from __future__ import annotations

import csv
import io
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
from src.storage.atomic import write_bytes_atomic

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


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    buffer = io.StringIO()
    columns = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buffer.getvalue().encode())


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


def calibrate(val: ExitRecord, test: ExitRecord) -> dict[str, float]:
    """Fit one temperature per exit on validation, set it on both records, and return each
    exit's test ECE before and after."""
    temperatures = torch.tensor([fit_temperature(val.logits[e], val.labels) for e in range(len(val.logits))])
    val.temperatures = test.temperatures = temperatures
    metrics = {}
    for e, temperature in enumerate(temperatures.tolist()):
        metrics[f"early_exit/temperature_exit{e}"] = temperature
        metrics[f"test/ece_exit{e}_before"] = expected_calibration_error(test.logits[e], test.labels)
        metrics[f"test/ece_exit{e}_after"] = expected_calibration_error(test.logits[e], test.labels, temperature)
    return metrics


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


def evaluate_exits(
    module: EarlyExitClassifier,
    val_loader,
    test_loader,
    output_dir: Path,
    saliency_method: str = "cam",
    max_accuracy_drop: float = 0.01,
    timing_samples: int = 200,
) -> dict[str, float]:
    """The whole early-exit evaluation; returns flat metrics for metrics.json. Writes
    curves.csv (every policy x threshold, val and test), chosen.csv (the operating point of each
    policy chosen on validation, reported on test), signal_quality.csv (AUROC/AURC of every
    signal at every exit), calibration.csv (temperature and ECE per exit), tradeoff.png,
    signal_quality.png and saliency_exits.png."""
    if saliency_method not in SALIENCY_METHODS:
        raise UserInputError(f"early_exit.saliency_method={saliency_method!r}; choose one of {', '.join(SALIENCY_METHODS)}.")
    val, test = record_exits(module, val_loader, saliency_method), record_exits(module, test_loader, saliency_method)
    metrics: dict[str, float] = calibrate(val, test)
    test_images = torch.cat([b["image"] for b in test_loader])
    costs = measure_costs(module, test_images[:1].to(module.device), saliency_method)
    metrics["full_network_flops"] = float(costs.full_network)
    for e in range(len(costs.heads)):  # what a saliency map adds to the exit's own cost
        metrics[f"early_exit/saliency_cost_ratio_exit{e}"] = costs.cost_of_exit(POLICIES["saliency_entropy"], e) / costs.cost_of_exit(POLICIES["confidence"], e)
    val_rows, test_rows = sweep(val, costs), sweep(test, costs)
    for split, record in (("val", val), ("test", test)):
        for e in range(len(record.logits)):
            metrics[f"{split}/acc_exit{e}"] = (record.predictions[e] == record.labels).float().mean().item()
    metrics.update({f"test/{k}": v for k, v in coherence_summary(test).items()})
    test_signals = test.signals()
    quality = signal_quality(test_signals, test.predictions, test.labels)
    for row in quality:
        metrics[f"test/auroc_exit{row['exit']}/{row['signal']}"] = row["auroc"]
        metrics[f"test/aurc_exit{row['exit']}/{row['signal']}"] = row["aurc"]
    final_val = metrics[f"val/acc_exit{len(val.logits) - 1}"]
    chosen: dict[str, dict] = {}
    for policy in available(test):
        pick = choose(val_rows, policy.name, final_val, max_accuracy_drop)
        if pick is None:
            continue
        point = operating_point(test, test_signals, costs, policy, pick["threshold"])
        main, gate = (pick["threshold"], None) if policy.gate is None else pick["threshold"]
        chosen[policy.name] = {
            "threshold": main,
            "gate_threshold": gate,
            "val_accuracy": pick["accuracy"],
            "test_accuracy": point["accuracy"],
            "test_mean_flops": point["mean_flops"],
            "test_flops_saving": point["flops_saving"],
            **{f"test_{k}": v for k, v in point.items() if k.endswith("_fraction")},
        }
        for key in ("threshold", "gate_threshold", "test_accuracy", "test_mean_flops", "test_flops_saving"):
            if chosen[policy.name][key] is not None:
                metrics[f"early_exit/{policy.name}/{key}"] = chosen[policy.name][key]
    deployable = {n: c for n, c in chosen.items() if not POLICIES[n].oracle}
    if deployable:
        best = max(deployable, key=lambda n: deployable[n]["test_flops_saving"])
        threshold = deployable[best]["threshold"] if POLICIES[best].gate is None else (deployable[best]["threshold"], deployable[best]["gate_threshold"])
        early, full = wall_clock(module, test_images[:timing_samples].to(module.device), POLICIES[best], threshold, saliency_method, test.temperatures.tolist())
        metrics.update({"early_exit/wall_ms_early": early * 1e3, "early_exit/wall_ms_full": full * 1e3})
        chosen[best]["wall_ms_batch1"] = early * 1e3
        chosen[best]["wall_ms_full_batch1"] = full * 1e3
        log.info("best deployable policy: %s", best)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_csv(output_dir / "curves.csv", [{"split": "val", **r} for r in val_rows] + [{"split": "test", **r} for r in test_rows])
    write_csv(output_dir / "chosen.csv", [{"policy": n, **c} for n, c in chosen.items()])
    write_csv(output_dir / "signal_quality.csv", quality)
    write_csv(
        output_dir / "calibration.csv",
        [
            {
                "exit": e,
                "temperature": metrics[f"early_exit/temperature_exit{e}"],
                "test_ece_before": metrics[f"test/ece_exit{e}_before"],
                "test_ece_after": metrics[f"test/ece_exit{e}_after"],
            }
            for e in range(len(costs.heads))
        ],
    )
    plot_tradeoff(output_dir / "tradeoff.png", test_rows, chosen, costs)
    plot_signal_quality(output_dir / "signal_quality.png", quality)
    plot_saliency(output_dir / "saliency_exits.png", test_images, test)
    return metrics
