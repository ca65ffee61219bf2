"""Mean and spread over seeds, paired comparisons with the no-reduction baseline, convergence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from src.sweep_report.runs import Run

# metrics where lower is better; every other metric is better when higher
LOWER_IS_BETTER = ("loss", "mse", "rand_error", "vi")


def higher_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] not in LOWER_IS_BETTER


def swept_keys(runs: Sequence[Run]) -> list[str]:
    """Override keys whose value differs between runs (a key missing from some runs counts),
    seed and paths excluded, in the order they first appear."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.overrides if k not in keys]
    # where data and outputs live (paths.*, data.data_dir) is no setting of the experiment
    return [k for k in keys if k != "seed" and not k.startswith("paths.") and k != "data.data_dir" and len({run.overrides.get(k) for run in runs}) > 1]


FINAL_ROUND = "final_round/"


def metric_of(run: Run, metric: str) -> float:
    """``metric`` of a run; a ``final_round/`` metric of a run without reduction is its plain
    metric (it has no rounds: its whole fit is its final round)."""
    if metric.startswith(FINAL_ROUND) and not run.reduced:
        metric = metric.removeprefix(FINAL_ROUND)
    return run.metrics.get(metric, math.nan)


def runs_table(runs: Sequence[Run], keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per run: its setting (``keys``), seed, whether it is a baseline, and ``metrics``."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {k: run.setting(k) for k in keys}
        # "runs": the group of a sweep that varies nothing but the seed
        row.update(seed=run.seed, baseline=not run.reduced, runs="no reduction" if not run.reduced else "with reduction", run=run.path.name)
        row["best round"] = best_round(run)
        row.update({m: metric_of(run, m) for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows)


def best_round(run: Run) -> str:
    """The reduction round (from 1) in which the run's selected checkpoint was saved."""
    if not run.reduced or run.best_epoch is None:
        return "—"
    return str(run.best_epoch // run.epochs_per_round + 1)


def last_epoch(runs: Sequence[Run], keys: Sequence[str], metric: str) -> pd.DataFrame:
    """Per setting: ``metric`` after the last training epoch, mean ± std over seeds."""
    rows = [
        {**{k: run.setting(k) for k in keys}, metric: float(run.epochs[metric].dropna().iloc[-1])}
        for run in runs
        if run.epochs is not None and metric in run.epochs and run.epochs[metric].notna().any()
    ]
    if not rows or not keys:
        return pd.DataFrame()
    group = pd.DataFrame(rows).groupby(list(keys), sort=False)[metric]
    return pd.DataFrame({"n": group.count(), f"last-epoch {metric}": [mean_std(m, s) for m, s in zip(group.mean(), group.std(ddof=1))]}).reset_index()


def mean_std(mean: float, std: float) -> str:
    """ "mean ± std"; the mean alone where there is no spread to show (n = 1: std is NaN)."""
    if math.isnan(mean):
        return "—"
    return f"{mean:.4g}" if math.isnan(std) else f"{mean:.4g} ± {std:.2g}"


def grouped(table: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Per setting: n (runs with the metric) and the mean and sample standard deviation of each
    metric over seeds."""
    parts = {"n": table.groupby(list(keys), sort=False)[metrics[0]].count()}
    for metric in metrics:
        group = table.groupby(list(keys), sort=False)[metric]
        parts[f"{metric} mean"] = group.mean()
        parts[f"{metric} std"] = group.std(ddof=1)
    return pd.DataFrame(parts).reset_index()


def paired_with_baseline(table: pd.DataFrame, keys: Sequence[str], metric: str) -> pd.DataFrame:
    """Each reduction setting against the baseline of the same seed (and the same values of any
    swept non-reduction key): mean difference, its 95% t-interval and the seeds where it wins."""
    # the preset names a stage of a study (a benchmark trains its baselines with another), not a setting
    match = [k for k in keys if not k.startswith("reduction.") and k != "experiment"]
    # baselines that differ only in reduction settings (which do not apply to them) are averaged
    return paired(table[~table.baseline], table[table.baseline], keys, match, metric)


RANDOM = "random"
PAIRED_WITH_RANDOM = ("reduction.method", "reduction.keep")


def paired_with_random(table: pd.DataFrame, keys: Sequence[str], metric: str) -> pd.DataFrame:
    """Each reduction setting that is not ``method=random`` against ``random`` at the same
    percentile, fill (every other swept key) and seed: does a map beat removing pixels at random
    at the same kept fraction? Empty when the sweep has no random arm."""
    if "reduction.method" not in keys:
        return pd.DataFrame()
    reduced = table[~table.baseline]
    random = reduced[reduced["reduction.method"] == RANDOM]
    if random.empty:
        return pd.DataFrame()
    match = [k for k in keys if k not in PAIRED_WITH_RANDOM]
    return paired(reduced[reduced["reduction.method"] != RANDOM], random, keys, match, metric)


def paired(settings: pd.DataFrame, reference: pd.DataFrame, keys: Sequence[str], match: Sequence[str], metric: str) -> pd.DataFrame:
    """Each setting (``keys``) of ``settings`` against the ``reference`` run with the same
    ``match`` values and seed (several such runs are averaged): per-seed difference = setting -
    reference; its mean, 95% t-interval and the seeds where the setting is better."""
    match = list(match)
    baseline = reference.groupby([*match, "seed"])[metric].mean()
    sign = 1.0 if higher_is_better(metric) else -1.0
    rows = []
    for setting, group in settings.groupby(list(keys), sort=False):
        index = [tuple(row) for row in group[[*match, "seed"]].itertuples(index=False)]
        base = baseline.reindex(pd.MultiIndex.from_tuples(index) if match else [i[0] for i in index]).to_numpy()
        diff = group[metric].to_numpy() - base
        diff = diff[~np.isnan(diff)]
        n = len(diff)
        mean = diff.mean() if n else math.nan
        half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        setting = setting if isinstance(setting, tuple) else (setting,)
        rows.append(
            {
                **dict(zip(keys, setting)),
                "pairs": n,
                "mean difference": mean,
                "ci low": mean - half,
                "ci high": mean + half,
                "wins": int((sign * diff > 0).sum()),
            }
        )
    return pd.DataFrame(rows)


def epochs_to_reach(epochs: pd.DataFrame | None, metric: str, target: float) -> tuple[float, float]:
    """(epochs, seconds) until ``metric`` first reaches ``target`` on validation (epochs counted
    from 1; seconds from ``time/elapsed_s``); NaN where it never does."""
    if epochs is None or metric not in epochs:
        return math.nan, math.nan
    curve = epochs.dropna(subset=[metric])
    reached = curve[metric] >= target if higher_is_better(metric) else curve[metric] <= target
    if not reached.any():
        return math.nan, math.nan
    first = curve[reached].iloc[0]
    seconds = float(first["time/elapsed_s"]) if "time/elapsed_s" in curve and not pd.isna(first.get("time/elapsed_s")) else math.nan
    return float(first["epoch"]) + 1, seconds


def convergence(runs: Sequence[Run], keys: Sequence[str], metric: str, fraction: float = 0.95) -> pd.DataFrame:
    """Per setting: epochs and seconds to reach ``fraction`` of the best validation score of the
    baseline of the same seed (higher-is-better metrics; lower-is-better ones must come within
    1/fraction of it), averaged over the runs that reach it, and how many do."""
    best = {}
    for run in runs:
        if not run.reduced and run.epochs is not None and metric in run.epochs:
            curve = run.epochs[metric].dropna()
            best[run.seed] = curve.max() if higher_is_better(metric) else curve.min()
    rows = []
    for run in runs:
        if run.seed not in best:
            continue
        target = best[run.seed] * fraction if higher_is_better(metric) else best[run.seed] / fraction
        epochs, seconds = epochs_to_reach(run.epochs, metric, target)
        rows.append({**{k: run.setting(k) for k in keys}, "epochs": epochs, "seconds": seconds})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    group = table.groupby(list(keys), sort=False)
    return pd.DataFrame(
        {"reached": group["epochs"].count(), "runs": group["epochs"].size(), "epochs mean": group["epochs"].mean(), "seconds mean": group["seconds"].mean()}
    ).reset_index()


def still_improving(runs: Sequence[Run], share: float = 0.1) -> list[tuple[int, int, int]]:
    """(seed, best epoch from 0, epochs trained) of each whole-run fit (no reduction, or a
    one-round reduction that retrains once on a set reduced before training) whose selected
    checkpoint comes from the last ``share`` of its training: it was still improving."""
    return sorted((run.seed, *late) for run in runs if (late := late_best_epoch(run, share)) is not None)


def late_best_epoch(run: Run, share: float = 0.1) -> tuple[int, int] | None:
    """(best epoch, epochs trained) of a whole-run fit whose best validation epoch falls in the
    last ``share`` of its training, else None."""
    total, best = run.value("trainer.max_epochs"), best_validation_epoch(run)
    whole = not run.reduced or int(run.value("reduction.rounds", 0)) == 1
    if not whole or best is None or not isinstance(total, int) or total < 1:
        return None
    return (best, total) if best + 1 > (1 - share) * total else None


def best_validation_epoch(run: Run) -> int | None:
    """The epoch (from 0) of the run's best validation score: from its per-epoch curve of the
    checkpoint monitor where it has one, else the best checkpoint's epoch (a CSV source)."""
    monitor = run.value("callbacks.model_checkpoint.monitor", "val/loss") or "val/loss"
    if run.epochs is not None and monitor in run.epochs and run.epochs[monitor].notna().any():
        curve = run.epochs.dropna(subset=[monitor])
        mode = run.value("callbacks.model_checkpoint.mode", "min")
        best = curve[monitor].idxmin() if mode == "min" else curve[monitor].idxmax()
        return int(curve.loc[best, "epoch"])
    return run.best_epoch
