"""The early-exit part of a sweep report: per policy, per signal and per exit, mean and spread
over seeds, and the paired question "does a saliency signal beat calibrated confidence"."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pandas as pd

from src.early_exit.policies import POLICIES
from src.sweep_report.runs import Run
from src.sweep_report.tables import table_md

SALIENCY_SIGNALS = ("saliency_entropy", "saliency_inertia", "coherence_prev")
REFERENCE = "calibrated_confidence"


def _fmt(values: Sequence[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "—"
    series = pd.Series(values, dtype=float)
    return f"{series.mean():.3f}" if len(values) == 1 else f"{series.mean():.3f} ± {series.std():.3f}"


def _groups(runs: Sequence[Run], keys: Sequence[str]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(", ".join(f"{k}={run.setting(k)}" for k in keys) or "all runs", []).append(run)
    return groups


def _exits(run: Run) -> list[int]:
    return sorted({int(m.group(1)) for key in run.metrics if (m := re.fullmatch(r"test/acc_exit(\d+)", key))})


def early_exit_section(runs: Sequence[Run], keys: Sequence[str]) -> list[str]:
    """Markdown lines; empty when no run has early-exit results."""
    runs = [r for r in runs if any(k.startswith("early_exit/") for k in r.metrics)]
    if not runs:
        return []
    lines = [
        "## Early exit",
        "",
        "Mean ± std over seeds. Policies: the cheapest threshold whose validation accuracy is within "
        "`early_exit.max_accuracy_drop` of the final exit, reported on test (— where no threshold qualified).",
        "",
    ]
    for group, members in _groups(runs, keys).items():
        exits = _exits(members[0])
        rows = []
        for name in POLICIES:
            found = [r.metrics for r in members if f"early_exit/{name}/test_accuracy" in r.metrics]
            rows.append(
                {
                    "policy": name,
                    "seeds": f"{len(found)}/{len(members)}",
                    "test accuracy": _fmt([m[f"early_exit/{name}/test_accuracy"] for m in found]),
                    "FLOPs saved": _fmt([m[f"early_exit/{name}/test_flops_saving"] for m in found]),
                }
            )
        final = [r.metrics[f"test/acc_exit{exits[-1]}"] for r in members]
        lines += [f"### {group}", "", f"Final exit test accuracy {_fmt(final)}.", "", table_md(pd.DataFrame(rows)), ""]
        quality = []
        for signal in ("confidence", REFERENCE, "entropy", *SALIENCY_SIGNALS):
            row = {"signal": signal}
            for e in exits[:-1]:
                row[f"AUROC exit {e}"] = _fmt([r.metrics.get(f"test/auroc_exit{e}/{signal}", math.nan) for r in members])
            quality.append(row)
        lines += [
            "How well each signal ranks its exit's right predictions above the wrong ones (test AUROC; 0.5 = chance):",
            "",
            table_md(pd.DataFrame(quality)),
            "",
        ]
        calibration = [
            {
                "exit": e,
                "temperature": _fmt([r.metrics[f"early_exit/temperature_exit{e}"] for r in members]),
                "ECE before": _fmt([r.metrics[f"test/ece_exit{e}_before"] for r in members]),
                "ECE after": _fmt([r.metrics[f"test/ece_exit{e}_after"] for r in members]),
            }
            for e in exits
        ]
        lines += ["Temperature scaling (fitted per exit on validation; test ECE, 15 bins):", "", table_md(pd.DataFrame(calibration)), ""]
        lines += _verdict(members, exits)
    return lines


def _verdict(members: Sequence[Run], exits: Sequence[int]) -> list[str]:
    """Per seed: the best saliency signal's AUROC minus calibrated confidence's, at each early
    exit; and the confidence-AND-saliency policy's FLOPs saving minus calibrated confidence's."""
    lines = []
    for e in exits[:-1]:
        diffs = []
        for r in members:
            reference = r.metrics.get(f"test/auroc_exit{e}/{REFERENCE}", math.nan)
            best = max((r.metrics.get(f"test/auroc_exit{e}/{s}", math.nan) for s in SALIENCY_SIGNALS), key=lambda v: -math.inf if math.isnan(v) else v)
            diffs.append(best - reference)
        wins = sum(d > 0 for d in diffs if not math.isnan(d))
        lines.append(f"- exit {e}: best saliency signal's AUROC − calibrated confidence's = {_fmt(diffs)} (saliency higher in {wins} of {len(diffs)} seeds)")
    combined = "calibrated_confidence_and_saliency_entropy"
    pairs = [
        r.metrics[f"early_exit/{combined}/test_flops_saving"] - r.metrics[f"early_exit/{REFERENCE}/test_flops_saving"]
        for r in members
        if f"early_exit/{combined}/test_flops_saving" in r.metrics and f"early_exit/{REFERENCE}/test_flops_saving" in r.metrics
    ]
    lines.append(f"- FLOPs saved by `{combined}` − by `{REFERENCE}` at the chosen operating points: {_fmt(pairs)} ({len(pairs)} seeds)")
    return ["Does saliency add to calibrated confidence?", "", *lines, ""]
