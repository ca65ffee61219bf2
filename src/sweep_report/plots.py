"""The report's figures (matplotlib, written as PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.ticker import MaxNLocator

from src.loggers.figures import save_figure, subplots
from src.sweep_report.runs import Run


def metric_vs_settings(table: pd.DataFrame, keys: Sequence[str], metric: str, path: Path, split: str) -> bool:
    """``metric`` against each swept value (mean and standard deviation over every run with that
    value; joined by a line only where the values are numbers), the plain no-reduction baseline
    as a band. False when nothing varies."""
    panels = [k for k in keys if table.loc[~table.baseline, k].nunique() > 1]
    if not panels:
        return False
    base = table.loc[table.baseline, metric].dropna()
    fig, axes = subplots(1, len(panels), figsize=(max(5.5, 4.0 * len(panels)), 3.6), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], panels):
        group = table[~table.baseline].groupby(key, sort=True)[metric]
        values = group.mean()
        # a line only joins values that lie on a scale (percentiles); categories (methods) stand apart
        numeric = pd.to_numeric(pd.Series(values.index), errors="coerce").notna().all()
        ax.errorbar(
            range(len(values)), values.to_numpy(), yerr=group.std(ddof=1).fillna(0).to_numpy(), fmt="o-" if numeric else "o", capsize=4, label="settings"
        )
        ax.set_xticks(range(len(values)), [str(v) for v in values.index], rotation=0 if numeric else 30, ha="center" if numeric else "right")
        ax.set_xlim(-0.5, len(values) - 0.5)  # the outer points off the frame
        if len(base):
            ax.axhline(base.mean(), color="black", lw=1, label=f"no reduction (n={len(base)})")
            ax.axhspan(base.mean() - base.std(ddof=1), base.mean() + base.std(ddof=1), color="black", alpha=0.1)
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"{metric} ({split}, best checkpoint)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{metric}\nmean ± std over the runs with each value", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def metric_by_arm(values: dict[str, list[float]], metric: str, path: Path, split: str) -> bool:
    """``metric`` of each arm of a study (mean and standard deviation over its seeds), one point
    per arm, the plain no-reduction arm as a band. False with fewer than two arms."""
    arms = {name: pd.Series(v).dropna() for name, v in values.items()}
    arms = {name: v for name, v in arms.items() if len(v)}
    if len(arms) < 2:
        return False
    fig, ax = subplots(figsize=(max(6.0, 0.75 * len(arms) + 2), 4.2))
    names = list(arms)
    base = arms.get("no reduction")
    if base is not None:
        ax.axhline(base.mean(), color="black", lw=1, label=f"no reduction (n={len(base)})")
        ax.axhspan(base.mean() - base.std(ddof=1), base.mean() + base.std(ddof=1), color="black", alpha=0.1)
    others = [n for n in names if n != "no reduction"]
    ax.errorbar(
        range(len(others)),
        [arms[n].mean() for n in others],
        yerr=[arms[n].std(ddof=1) for n in others],
        fmt="o",
        capsize=4,
        label="arms (mean ± std over seeds)",
    )
    ax.set_xticks(range(len(others)), others, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} ({split})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{metric} per arm")
    fig.tight_layout()
    save_figure(fig, path)
    return True


def mean_curves(runs: Sequence[Run], label_of: dict[Path, str], metric: str, path: Path) -> bool:
    """Validation ``metric`` per epoch, averaged over the seeds of each setting; the baseline
    in black."""
    curves: dict[str, list[pd.Series]] = {}
    for run in runs:
        if run.epochs is not None and metric in run.epochs:
            curves.setdefault(label_of[run.path], []).append(run.epochs.set_index("epoch")[metric].dropna())
    if not curves:
        return False
    fig, ax = subplots(figsize=(11, 4.6))  # the legend beside the axes, readable
    # tab10's strong colours first; tab20's pale halves only beyond ten settings
    colours = iter([*matplotlib.colormaps["tab10"].colors, *matplotlib.colormaps["tab20"].colors[1::2]] * 4)
    for label, series in curves.items():
        mean = pd.concat(series, axis=1).mean(axis=1)
        baseline = label.startswith("no reduction")
        ax.plot(
            mean.index,
            mean.to_numpy(),
            color="black" if baseline else next(colours),
            lw=2.2 if baseline else 1.0,
            label=f"{label} (n={len(series)})",
            zorder=3 if baseline else 2,
        )
    ax.set_title(f"validation {metric} per epoch, mean over seeds")
    ax.set_xlabel("epoch (counted from 0, as in the logs and checkpoint names)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"{metric} (validation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 if len(curves) <= 14 else 2)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def same_series(frame: pd.DataFrame, columns: list[str]) -> list[list[str]]:
    """``columns`` grouped by equal values (a regression net's ``val/loss`` is its ``val/mse``):
    one line per group, labelled with every name, so no metric is drawn under another."""
    groups: list[list[str]] = []
    for column in columns:
        same = next((group for group in groups if frame[group[0]].equals(frame[column])), None)
        if same is None:
            groups.append([column])
        else:
            same.append(column)
    return groups


def rounds_curves(rounds: pd.DataFrame, path: Path) -> None:
    """One run's reduction, per round: validation metrics, kept fraction, saliency measures."""
    val = [c for c in rounds.columns if c.startswith("val/")]
    measures = [c for c in ("mean_spatial_entropy", "mean_moment_of_inertia") if c in rounds]
    fig, axes = subplots(1, 3, figsize=(13, 3.6))
    for names in same_series(rounds, val):
        axes[0].plot(rounds["round"], rounds[names[0]], "o-", label=" = ".join(names))
    axes[0].set_title("validation after each round's fit")
    axes[1].plot(rounds["round"], rounds["kept_fraction"], "o-")
    axes[1].set_title("kept fraction of the pixels")
    for column in measures:
        axes[2].plot(rounds["round"], rounds[column], "o-", label=column.removeprefix("mean_"))
    axes[2].set_title("relevance maps (mean over images)")
    for ax in axes:
        ax.set_xlabel("round")
        ax.set_xticks(rounds["round"])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def learning_curves(epochs: pd.DataFrame, path: Path, epochs_per_round: int | None) -> None:
    """Losses and validation metrics per epoch; dashed lines where the training set was reduced."""
    losses = [c for c in ("train/loss", "val/loss") if c in epochs]
    scores = [c for c in epochs.columns if c.startswith("val/") and c != "val/loss"]
    fig, axes = subplots(1, 2, figsize=(12, 3.8))
    for ax, columns in zip(axes, (losses, scores)):
        for names in same_series(epochs, columns):
            series = epochs[["epoch", names[0]]].dropna()
            ax.plot(series["epoch"], series[names[0]], label=" = ".join(names))
        if epochs_per_round:
            for boundary in range(epochs_per_round, int(epochs["epoch"].max()) + 1, epochs_per_round):
                ax.axvline(boundary - 0.5, color="gray", ls="--", lw=0.8)
        ax.set_xlabel("epoch (counted from 0)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    axes[0].set_title("loss")
    axes[1].set_title("validation metrics")
    fig.tight_layout()
    save_figure(fig, path)
