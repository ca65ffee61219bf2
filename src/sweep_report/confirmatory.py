"""The confirmatory part of a study's report: its primary metric, the family of comparisons named
in its preset (``study:``), paired t-tests adjusted together by Holm's method, and a two one-sided
tests (TOST) verdict on equivalence within the preset's margin.

A comparison is an arm (one setting of the swept keys) against a reference setting, paired by
seed (and by the ``match`` keys, e.g. the fill); the difference is arm - reference, signed so
that "better" follows the metric's direction. Holm's step-down adjustment (statsmodels) controls
the family-wise error over the whole family; the simultaneous intervals are Bonferroni's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from src.sweep_report.runs import Run
from src.sweep_report.stats import higher_is_better, metric_of

ALPHA = 0.05


@dataclass(frozen=True)
class FamilyPart:
    """Every arm matching one of ``arms`` against the runs matching ``against``, paired by seed and
    by the ``match`` keys."""

    against: dict[str, str]
    arms: list[dict[str, str]]
    match: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Study:
    name: str
    primary: str
    margin: float
    family: list[FamilyPart]


def study_of(runs: Sequence[Run]) -> Study | None:
    """The ``study:`` block the runs were configured with (the first run that has one)."""
    for run in runs:
        block = run.value("study")
        if block:
            spec = OmegaConf.to_container(block, resolve=True)
            parts = [
                FamilyPart(
                    against={k: str(v) for k, v in part["against"].items()},
                    arms=[{k: str(v) for k, v in arm.items()} for arm in part["arms"]],
                    match=list(part.get("match") or []),
                )
                for part in spec["family"]
            ]
            return Study(str(run.value("task_name", "study")), spec["primary"], float(spec["margin"]), parts)
    return None


def matches(run: Run, selector: Mapping[str, str]) -> bool:
    return all(run.setting(key) == value for key, value in selector.items())


def label(run: Run, keys: Sequence[str]) -> str:
    if not run.reduced:
        return "no reduction"
    return ", ".join(f"{k.removeprefix('reduction.')}={run.setting(k)}" for k in keys if k != "reduction.rounds") or "reduction"


def selector_label(selector: Mapping[str, str]) -> str:
    if selector.get("reduction.rounds") == "0":
        return "no reduction"
    return ", ".join(f"{k.removeprefix('reduction.')}={v}" for k, v in selector.items())


def paired_differences(runs: Sequence[Run], keys: Sequence[str], part: FamilyPart, metric: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(arm label, arm values, reference values) per arm of ``part``, paired by seed and the
    ``match`` keys (several matching reference runs are averaged); pairs with a missing value are
    dropped."""
    references = [r for r in runs if matches(r, part.against) and r.metrics]
    arms: dict[str, list[Run]] = {}
    for run in runs:
        if run.metrics and not matches(run, part.against) and any(matches(run, arm) for arm in part.arms):
            arms.setdefault(label(run, keys), []).append(run)
    out = []
    for name, group in arms.items():
        values, base = [], []
        for run in sorted(group, key=lambda r: r.seed):
            partners = [metric_of(r, metric) for r in references if r.seed == run.seed and all(r.setting(m) == run.setting(m) for m in part.match)]
            value, partner = metric_of(run, metric), (float(np.mean(partners)) if partners else math.nan)
            if not (math.isnan(value) or math.isnan(partner)):
                values.append(value)
                base.append(partner)
        if values:  # an arm with no reference to pair with is no comparison
            out.append((name, np.array(values), np.array(base)))
    return out


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels); NaN stays NaN and is not counted in the family."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, math.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], alpha=ALPHA, method="holm")[1]
    return adjusted


def tost_p(arm: np.ndarray, reference: np.ndarray, margin: float) -> float:
    """The TOST p-value of equivalence within +-``margin`` of paired samples (statsmodels'
    ``ttost_paired``): below alpha, the difference lies inside the margin."""
    if len(arm) < 2 or np.std(arm - reference) == 0:
        return math.nan
    return float(ttost_paired(arm, reference, -margin, margin)[0])


def verdict(mean: float, p_adjusted: float, tost_adjusted: float, margin: float, better_sign: float) -> str:
    """better / worse (the adjusted test rejects "no difference"), equivalent (TOST rejects a
    difference as large as the margin), or inconclusive (neither)."""
    equivalent = not math.isnan(tost_adjusted) and tost_adjusted < ALPHA
    if not math.isnan(p_adjusted) and p_adjusted < ALPHA:
        word = "better" if better_sign * mean > 0 else "worse"
        return f"{word} (within ±{margin:g})" if equivalent else word
    return f"equivalent within ±{margin:g}" if equivalent else "inconclusive"


def confirmatory_table(runs: Sequence[Run], keys: Sequence[str], study: Study, metric: str | None = None) -> pd.DataFrame:
    """One row per comparison of the family on ``metric`` (default: the primary): pairs, mean
    difference, its 95% and its simultaneous (Bonferroni over the family) t-intervals, the
    paired t-test's p-value raw and Holm-adjusted, the Holm-adjusted TOST p-value and the verdict."""
    metric = metric or study.primary
    rows: list[dict[str, Any]] = []
    for part in study.family:
        for name, arm, reference in paired_differences(runs, keys, part, metric):
            diff = arm - reference
            n = len(diff)
            rows.append(
                {
                    "arm": name,
                    "against": selector_label(part.against) + (f" (same {', '.join(m.removeprefix('reduction.') for m in part.match)})" if part.match else ""),
                    "pairs": n,
                    "mean": float(diff.mean()) if n else math.nan,
                    "se": float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                    "p": float(scipy_stats.ttest_rel(arm, reference).pvalue) if n > 1 and diff.std() > 0 else math.nan,
                    "tost": tost_p(arm, reference, study.margin),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    m = int(table["p"].notna().sum())
    table["p (Holm)"] = holm(table["p"])
    table["TOST p (Holm)"] = holm(table["tost"])
    sign = 1.0 if higher_is_better(metric) else -1.0
    table["95% interval"] = [_interval(r.mean, r.se, r.pairs, 0.975) for r in table.itertuples()]
    table[f"simultaneous interval (m = {m})"] = [_interval(r.mean, r.se, r.pairs, 1 - ALPHA / (2 * max(m, 1))) for r in table.itertuples()]
    table["verdict"] = [verdict(mean, p, t, study.margin, sign) for mean, p, t in zip(table["mean"], table["p (Holm)"], table["TOST p (Holm)"])]
    return table


def _interval(mean: float, se: float, n: int, quantile: float) -> str:
    if math.isnan(se):
        return "—" if math.isnan(mean) else f"{mean:+.4f}"
    half = scipy_stats.t.ppf(quantile, n - 1) * se
    return f"[{mean - half:+.4f}, {mean + half:+.4f}]"


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a report prints (the raw p-value and standard error stay in the data)."""
    out = table.rename(columns={"mean": "mean difference"})
    interval = next(c for c in out.columns if c.startswith("simultaneous"))
    return out[["arm", "against", "pairs", "mean difference", "95% interval", interval, "p", "p (Holm)", "TOST p (Holm)", "verdict"]]
