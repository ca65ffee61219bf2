"""report.md for one run or a sweep, with its PNG plots beside it."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.atomic import write_bytes_atomic
from src.reporting import plots, stats
from src.reporting.early_exit import early_exit_section
from src.reporting.runs import Run
from src.reporting.tables import table_md

# the final metrics a report shows, when a run logged them
REPORTED = ("miou", "mdice", "acc", "mse", "rand_error", "vi", "loss")


def reported_metrics(runs: Sequence[Run], split: str, headline: str) -> list[str]:
    logged = {k for run in runs for k in run.metrics}
    # with MSE as the loss (eliret's regression output) the loss column would repeat it
    names = [n for n in REPORTED if not (n == "loss" and f"{split}/mse" in logged)]
    metrics = [f"{split}/{name}" for name in names if f"{split}/{name}" in logged]
    return [headline, *(m for m in metrics if m != headline)] if headline in logged else metrics


def _mean_std(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean/std column pairs folded into one "mean ± std" column per metric."""
    out = frame.drop(columns=[c for m in metrics for c in (f"{m} mean", f"{m} std")])
    for m in metrics:
        out[m] = [
            "—" if math.isnan(mean) else (f"{mean:.4g}" if math.isnan(std) else f"{mean:.4g} ± {std:.2g}")
            for mean, std in zip(frame[f"{m} mean"], frame[f"{m} std"])
        ]
    return out


def _with_best_rounds(grouped: pd.DataFrame, table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    if not keys:
        return grouped
    rounds = table.groupby(list(keys), sort=False)["best round"].agg(lambda r: ",".join(r))
    return grouped.merge(rounds.reset_index(), on=list(keys), how="left")


def _label(run: Run, keys: Sequence[str]) -> str:
    if not run.reduced:
        return "no reduction"
    return ", ".join(f"{k.removeprefix('reduction.')}={run.setting(k)}" for k in keys if k != "reduction.rounds") or "reduction"


def _selection(runs: Sequence[Run]) -> str:
    monitor = runs[0].value("callbacks.model_checkpoint.monitor", "val/loss")
    mode = runs[0].value("callbacks.model_checkpoint.mode", "min")
    return f"the checkpoint with the best validation `{monitor}` ({mode})"


def sweep_report(runs: Sequence[Run], sweep_dir: Path, out: Path, headline: str) -> Path:
    split = headline.split("/", 1)[0]
    ok = [r for r in runs if r.metrics]
    failed = [r for r in runs if not r.metrics]
    if not ok:
        raise ValueError(f"no run of {sweep_dir} finished (no metrics.json); nothing to report.")
    keys = stats.swept_keys(runs)
    metrics = reported_metrics(ok, split, headline)
    table = stats.runs_table(ok, keys, metrics)
    seeds = sorted(table.seed.unique())
    lines = [
        f"# Sweep report: `{sweep_dir.name}`",
        "",
        f"- sweep dir: `{sweep_dir}`; {len(runs)} jobs, {len(ok)} finished, {len(failed)} without results"
        + (f" ({', '.join(r.path.name for r in failed)})" if failed else ""),
        f"- swept: {', '.join(f'`{k}`' for k in keys) or 'nothing'}; seeds {', '.join(map(str, seeds))}",
        f"- metrics: `{split}/*` on the {split} split, from {_selection(ok)} of each run; "
        "↑ higher is better for mIoU / Dice / accuracy, ↓ lower for loss / MSE / Rand error / VI",
        "- std: sample standard deviation over seeds (n - 1); every run and its files: `sweep_summary.csv`",
        "",
        "## Mean and spread over seeds",
        "",
        table_md(_with_best_rounds(_mean_std(stats.grouped(table, keys or ["baseline"], metrics), metrics), table, keys)),
        "",
        "best round: the reduction round each seed's selected checkpoint comes from (1 = trained before any reduction; — = no reduction).",
        "",
    ]
    final = stats.last_epoch(ok, keys, f"val/{headline.split('/', 1)[1]}")
    if not final.empty:
        lines += [
            "## At the end of training, without checkpoint selection",
            "",
            "The validation metric after the last epoch (mean ± std over seeds): what training on the reduced "
            "set leads to, where selection may have fallen back to an earlier round.",
            "",
            table_md(final),
            "",
        ]
    if table.baseline.any() and (~table.baseline).any():
        lines += ["## Each reduction setting against the no-reduction baseline of the same seed", ""]
        lines += [
            "Difference = setting − baseline, per seed; mean with its 95% t-interval over the pairs; wins = seeds where the setting is better.",
            "",
        ]
        for metric in metrics:
            arrow = "↑" if stats.higher_is_better(metric) else "↓"
            lines += [f"**{metric}** ({arrow})", "", table_md(stats.paired_with_baseline(table, keys, metric)), ""]
    if plots.metric_vs_settings(table, keys, headline, out / "metric_vs_settings.png", split):
        lines += ["## The headline metric against each swept value", "", "![metric vs settings](metric_vs_settings.png)", ""]
    val_metric = f"val/{headline.split('/', 1)[1]}"
    conv = stats.convergence(ok, keys, val_metric)
    if not conv.empty:
        arrow = "≥ 0.95 ×" if stats.higher_is_better(val_metric) else "≤ 1/0.95 ×"
        lines += [
            "## Convergence",
            "",
            f"Epochs (and wall seconds, validation included) until `{val_metric}` first reaches {arrow} the best "
            f"validation score of the no-reduction run of the same seed; mean over the runs that reach it.",
            "",
            table_md(conv),
            "",
        ]
    labels = {run.path: _label(run, keys) for run in ok}
    if plots.mean_curves(ok, labels, val_metric, out / "curves.png"):
        lines += ["## Validation curves (mean over seeds)", "", "![validation curves](curves.png)", ""]
    lines += early_exit_section(ok, keys)
    if failed:
        lines += ["## Jobs without results", "", *(f"- `{r.path.name}`: {' '.join(f'{k}={v}' for k, v in r.overrides.items())}" for r in failed), ""]
    return _write(out, lines)


def run_report(run: Run, out: Path) -> Path:
    lines = [
        f"# Run report: `{run.path.name}`",
        "",
        f"- run dir: `{run.path}`",
        f"- overrides: `{' '.join(f'{k}={v}' for k, v in run.overrides.items()) or 'none'}`",
        f"- final metrics from {_selection([run])}" + (f" (epoch {run.best_epoch + 1}, counted from 1)" if run.best_epoch is not None else ""),
        "",
    ]
    if run.metrics:
        frame = pd.DataFrame({"metric": list(run.metrics), "value": list(run.metrics.values())}).sort_values("metric")
        lines += ["## Final metrics", "", table_md(frame), ""]
    if run.rounds is not None:
        plots.rounds_curves(run.rounds, out / "rounds.png")
        shown = [c for c in run.rounds.columns if c != "masks_sha256"]
        lines += ["## Saliency reduction, per round", "", table_md(run.rounds[shown]), "", "![rounds](rounds.png)", ""]
        for grid in sorted((run.path / "reduction").glob("round_*/examples.png")):
            name = f"examples_{grid.parent.name}.png"
            shutil.copyfile(grid, out / name)
            lines += [f"**{grid.parent.name.replace('_', ' ')}**", "", f"![{grid.parent.name}]({name})", ""]
    if run.epochs is not None:
        plots.learning_curves(run.epochs, out / "learning_curves.png", run.epochs_per_round)
        note = " (dashed: the training set is reduced)" if run.reduced else ""
        lines += [f"## Learning curves{note}", "", "![learning curves](learning_curves.png)", ""]
    return _write(out, lines)


def _write(out: Path, lines: list[str]) -> Path:
    path = out / "report.md"
    write_bytes_atomic(path, ("\n".join(lines).rstrip() + "\n").encode())
    return path
