"""The threshold sweep: every policy at every candidate threshold on one split, and the cheapest
threshold within an accuracy budget."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from src.early_exit.costs import ExitCosts
from src.early_exit.policies import POLICIES, Policy, Threshold, exit_indices
from src.early_exit.scores import ExitRecord


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
