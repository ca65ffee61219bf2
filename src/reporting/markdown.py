"""report.md for one run or a sweep, with its PNG plots beside it."""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.reporting import plots, stats
from src.reporting.early_exit import early_exit_section
from src.reporting.runs import Run
from src.reporting.tables import table_md
from src.runs.atomic import write_bytes_atomic

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
        out[m] = [stats.mean_std(mean, std) for mean, std in zip(frame[f"{m} mean"], frame[f"{m} std"])]
    return out


def shift_names(runs: Sequence[Run], split: str) -> list[str]:
    """The shifts the runs were tested under (``<split>_shift/<shift>/<metric>`` keys)."""
    prefix = f"{split}_shift/"
    return sorted({k[len(prefix) :].split("/", 1)[0] for run in runs for k in run.metrics if k.startswith(prefix) and k.count("/") == 2})


def _interval(frame: pd.DataFrame) -> list[str]:
    return [
        "—" if math.isnan(m) else (f"{m:+.3g}" if math.isnan(lo) else f"{m:+.3g} [{lo:+.3g}, {hi:+.3g}]")
        for m, lo, hi in zip(frame["mean difference"], frame["ci low"], frame["ci high"])
    ]


def paired_grid(table: pd.DataFrame, keys: Sequence[str], columns: dict[str, str], compare) -> pd.DataFrame:
    """One row per setting, one cell per ``columns`` entry (label -> metric): the mean paired
    difference with its 95% interval, from ``compare(table, keys, metric)``."""
    grid: pd.DataFrame | None = None
    for label, metric in columns.items():
        frame = compare(table, keys, metric)
        if frame.empty:
            return pd.DataFrame()
        cells = frame[list(keys)].copy()
        cells[label] = _interval(frame)
        grid = cells if grid is None else grid.merge(cells, on=list(keys), how="outer", sort=False)
    return grid if grid is not None else pd.DataFrame()


def beats_random(table: pd.DataFrame, keys: Sequence[str], metric: str) -> str:
    """One sentence: which settings beat random at the same kept fraction on ``metric`` (the
    95% interval of the paired difference entirely on the better side)."""
    frame = stats.paired_with_random(table, keys, metric)
    sign = 1.0 if stats.higher_is_better(metric) else -1.0
    better = frame[(sign * frame["ci low"] > 0) & (sign * frame["ci high"] > 0)] if not frame.empty else frame
    worse = frame[(sign * frame["ci low"] < 0) & (sign * frame["ci high"] < 0)] if not frame.empty else frame

    def names(rows: pd.DataFrame) -> str:
        return (
            "; ".join(", ".join(f"{k.removeprefix('reduction.')}={v}" for k, v in zip(keys, row)) for row in rows[list(keys)].itertuples(index=False)) or "none"
        )

    return f"On `{metric}`, better than random (95% interval above zero): {names(better)}. Worse than random: {names(worse)}."


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
    name = headline.split("/", 1)[1]
    logged = {k for run in ok for k in run.metrics}
    shifts = shift_names(ok, split)
    robust = [f"{split}_shift/{name}"] if f"{split}_shift/{name}" in logged else []
    in_final_round = [f"{stats.FINAL_ROUND}{m}" for m in (*metrics, *robust) if f"{stats.FINAL_ROUND}{m}" in logged]
    per_shift = {s: f"{split}_shift/{s}/{name}" for s in shifts}
    final_per_shift = {s: f"{stats.FINAL_ROUND}{m}" for s, m in per_shift.items() if f"{stats.FINAL_ROUND}{m}" in logged}
    table = stats.runs_table(ok, keys, [*metrics, *robust, *in_final_round, *per_shift.values(), *final_per_shift.values()])
    metrics = [*metrics, *robust]
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
    if robust:
        lines += [
            f"`{robust[0]}`: the mean over the shifts ({', '.join(shifts)}) and their severities 1-3 of each run's `robustness/robustness.csv`.",
            "",
        ]
    if in_final_round:
        lines += [
            "## Selection inside the final round",
            "",
            "When a reduction hurts, the best checkpoint falls back to weights from before it (best round 1). Here each reduced "
            "run is scored at the best checkpoint *within its final round* (the same monitor), which is what training on the "
            "reduced set yields; runs without reduction keep their best checkpoint.",
            "",
            table_md(_mean_std(stats.grouped(table, keys or ["baseline"], in_final_round), in_final_round)),
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
        # within the final round: the headline and its robustness only (the rest is in the table above)
        for metric in [*metrics, *(m for m in in_final_round if m.endswith(f"/{name}"))]:
            arrow = "↑" if stats.higher_is_better(metric) else "↓"
            lines += [f"**{metric}** ({arrow})", "", table_md(stats.paired_with_baseline(table, keys, metric)), ""]
    headlines = [headline, *(m for m in (*robust, *in_final_round) if m.endswith(f"/{name}"))]
    if not stats.paired_with_random(table, keys, headline).empty:
        lines += [
            "## Each setting against random removal at the same kept fraction",
            "",
            "Difference = setting − `method=random` at the same percentile, fill and seed (ROAR's control: without it an effect "
            "cannot be told apart from less input acting as a regulariser); mean with its 95% t-interval; wins = seeds where the "
            "setting is better.",
            "",
        ]
        for metric in headlines:
            arrow = "↑" if stats.higher_is_better(metric) else "↓"
            lines += [f"**{metric}** ({arrow})", "", table_md(stats.paired_with_random(table, keys, metric)), "", beats_random(table, keys, metric), ""]
    if shifts:
        lines += [
            "## Robustness, shift by shift",
            "",
            f"`{name}` under each shift (mean over severities 1-3), mean ± std over seeds, best checkpoint:",
            "",
            table_md(
                _mean_std(stats.grouped(table, keys or ["baseline"], list(per_shift.values())), list(per_shift.values())).rename(
                    columns={m: s for s, m in per_shift.items()}
                )
            ),
            "",
        ]
        for title, columns in (("best checkpoint", per_shift), ("best checkpoint within the final round", final_per_shift)):
            for against, compare in (("the no-reduction baseline", stats.paired_with_baseline), ("`method=random`", stats.paired_with_random)):
                grid = paired_grid(table, keys, columns, compare) if columns and keys else pd.DataFrame()
                if not grid.empty:
                    lines += [f"**Against {against}, {title}**: paired difference in `{name}` per shift, mean [95% interval]", "", table_md(grid), ""]
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
