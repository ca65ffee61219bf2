"""report.md for one run or a sweep, with its PNG plots beside it."""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.storage.atomic import write_bytes_atomic
from src.sweep_report import confirmatory, plots, stats
from src.sweep_report.early_exit import early_exit_section
from src.sweep_report.runs import Run
from src.sweep_report.tables import table_md

# the final metrics a report shows, when a run logged them
REPORTED = ("miou_object", "miou", "mdice", "acc", "mse", "rand_error", "vi", "loss")
EXPLORATORY_WORDS = "exploratory, unadjusted"
EXPLORATORY = f"*{EXPLORATORY_WORDS.capitalize()}:* 95% intervals per comparison, with no correction for the many comparisons of this page."
# a docs page shows this many columns of a table; the rest stay in sweep_summary.csv
MAX_COLUMNS = 10


def study_headline(primary: str) -> str:
    """The exploratory tables' headline for a study's primary metric: its metric on the test split
    (``final_round/test_reversed/miou_object`` -> ``test/miou_object``)."""
    return f"test/{primary.rsplit('/', 1)[-1]}"


def source_name(source: Path) -> str:
    """A source as a report names it: a sweep dir's or a CSV's own name, never a machine path."""
    return source.name


def without_paths(text: str) -> str:
    """Absolute paths in ``text`` reduced to their last part (``/tmp/x/data`` -> ``…/data``)."""
    return re.sub(r"(?<![\w.])/(?:[^\s/]+/)*([^\s/]+)", r"…/\1", text)


def narrowed(frame: pd.DataFrame, keys: Sequence[str], limit: int = MAX_COLUMNS) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with at most ``limit`` columns: the key columns, then the first others (the last
    column, e.g. best round, kept); returns the dropped column names."""
    if len(frame.columns) <= limit:
        return frame, []
    fixed = [c for c in frame.columns if c in keys or c == "n"]
    others = [c for c in frame.columns if c not in fixed]
    kept = others[: max(1, limit - len(fixed) - 1)] + others[-1:]
    return frame[fixed + kept], [c for c in others if c not in kept]


def column_chunks(frame: pd.DataFrame, keys: Sequence[str], limit: int = MAX_COLUMNS) -> list[pd.DataFrame]:
    """``frame`` split into tables of at most ``limit`` columns, each repeating the key columns."""
    fixed = [c for c in frame.columns if c in keys]
    others = [c for c in frame.columns if c not in fixed]
    chunks = math.ceil(len(others) / max(1, limit - len(fixed)))
    if chunks <= 1:
        return [frame]
    width = math.ceil(len(others) / chunks)  # even chunks: 8 shifts as 4 + 4, not 6 + 2
    return [frame[fixed + others[i : i + width]] for i in range(0, len(others), width)]


def test_splits(runs: Sequence[Run], name: str) -> dict[str, str]:
    """Label -> metric of ``name`` on each extra test split the runs were tested on
    (``test_<split>/``, the shortcut set's aligned, reversed and neutral), best checkpoint and
    within the final round."""
    logged = {k for run in runs for k in run.metrics}
    found = sorted(
        {k.split("/", 1)[0].removeprefix("test_") for k in logged if k.startswith("test_") and not k.startswith("test_shift") and k.endswith(f"/{name}")}
    )
    out = {split: f"test_{split}/{name}" for split in found}
    out.update({f"{split}, final round": f"{stats.FINAL_ROUND}test_{split}/{name}" for split in found if f"{stats.FINAL_ROUND}test_{split}/{name}" in logged})
    return out


def test_splits_section(table: pd.DataFrame, keys: Sequence[str], splits: dict[str, str]) -> list[str]:
    if not splits:
        return []
    name = next(iter(splits.values())).rsplit("/", 1)[-1]
    grouped = _mean_std(stats.grouped(table, keys or ["runs"], list(splits.values())), list(splits.values())).rename(columns={m: s for s, m in splits.items()})
    lines = ["## Every test split", "", f"`{name}` on each test split, mean ± std over seeds (best checkpoint, and within the final round):", ""]
    lines += [part for chunk in column_chunks(grouped, [*keys, "n"] if keys else ["runs", "n"]) for part in (table_md(chunk), "")]
    if keys and table.baseline.any() and (~table.baseline).any():
        grid = paired_grid(table, keys, splits, stats.paired_with_baseline)
        if not grid.empty:
            lines += [f"**Against the no-reduction baseline**: paired difference in `{name}` per split, mean [95% interval] ({EXPLORATORY_WORDS})", ""]
            lines += [part for chunk in column_chunks(grid, keys) for part in (table_md(chunk), "")]
    return lines


def confirmatory_section(runs: Sequence[Run], keys: Sequence[str], study: confirmatory.Study | None) -> list[str]:
    """The preset's primary metric and family, first: Holm-adjusted tests and TOST verdicts."""
    if study is None:
        return []
    table = confirmatory.confirmatory_table(runs, keys, study)
    if table.empty:
        return ["## Confirmatory analysis", "", f"No comparison of the family could be paired on `{study.primary}`.", ""]
    arrow = "↑" if stats.higher_is_better(study.primary) else "↓"
    interval = next(c for c in table.columns if c.startswith("simultaneous"))
    return [
        "## Confirmatory analysis",
        "",
        f"Primary metric: **`{study.primary}`** ({arrow}). The family: the {len(table)} comparisons below, named in the study's preset. "
        "Difference = arm − reference, paired by seed; p: two-sided paired t-test, adjusted over the family by Holm's method; "
        f"{interval}: Bonferroni's simultaneous 95% intervals. TOST: two one-sided tests of equivalence within "
        f"{study.describe_margin()} (the margin column), Holm-adjusted too. Detectable: the smallest mean difference a paired "
        f"t-test at alpha 0.05/{len(table)} finds with 80% power, given the observed spread of the differences: a margin or an "
        "effect below it is out of this study's reach. Verdict: better or worse where the adjusted p < 0.05"
        + (
            " and the exact sign-flip permutation p (every sign pattern of the paired differences), Holm-adjusted too, < 0.05 as well"
            if study.sign_flip
            else ""
        )
        + ", equivalent where the adjusted TOST p < 0.05, otherwise inconclusive. Only an *equivalent* verdict supports a claim of no effect.",
        "",
        table_md(confirmatory.shown(table)),
        "",
        *controls_section(runs, keys, study),
        *gain_section(runs, keys, study),
    ]


def controls_section(runs: Sequence[Run], keys: Sequence[str], study: confirmatory.Study) -> list[str]:
    """The preset's secondary comparisons (``controls``), tested as the family is, adjusted apart."""
    table = confirmatory.confirmatory_table(runs, keys, study, parts=study.controls) if study.controls else pd.DataFrame()
    if table.empty:
        return []
    return [
        "### Controls (secondary)",
        "",
        f"The preset's {len(table)} secondary comparisons on `{study.primary}`, tested as the family is, Holm-adjusted among "
        "themselves (not with the family): is a map more than its controls, and do the label-using baselines beat no reduction?",
        "",
        table_md(confirmatory.shown(table)),
        "",
    ]


def gain_section(runs: Sequence[Run], keys: Sequence[str], study: confirmatory.Study) -> list[str]:
    """Each arm's share of the oracle's gain over random removal, with its bootstrap interval."""
    table = confirmatory.gain_table(runs, keys, study)
    if table.empty:
        return []
    return [
        "### Share of the oracle's gain",
        "",
        f"G = (arm − random) / (oracle − random) on `{study.primary}`, means over the seeds that ran all three; 95% "
        + ("BCa (bias-corrected and accelerated)" if study.g_interval == "bca" else "percentile")
        + f" bootstrap interval over seeds ({confirmatory.BOOTSTRAP_RESAMPLES} resamples, the same seeds for the three). "
        "0: no better than random removal; 1: as good as a perfect map; below 0: worse than random. The reference line is no "
        "reduction's G: a map below it does worse than not reducing at all.",
        "",
        table_md(table),
        "",
    ]


def convergence_warnings(runs: Sequence[Run], keys: Sequence[str]) -> list[str]:
    """A warning per whole-run fit (no reduction, or one round from a trained model's maps) whose
    best validation epoch falls in the last 10% of its training, named by its arm."""
    late: dict[str, list[str]] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        found = stats.late_best_epoch(run)
        if found is not None:
            late.setdefault(confirmatory.label(run, keys), []).append(f"seed {run.seed} (best at epoch {found[0]}, counted from 0, of {found[1]} epochs)")
    if not late:
        return []
    listed = "; ".join(f"{arm}: {', '.join(seeds)}" for arm, seeds in late.items())
    return [
        "## Warning: fits still improving",
        "",
        f"The best validation epoch falls in the last 10% of training for {listed}: those fits were still improving when "
        "training stopped, so a longer budget could change the comparisons that use them.",
        "",
    ]


def reported_metrics(runs: Sequence[Run], split: str, headline: str) -> list[str]:
    """The headline, then the :data:`REPORTED` metrics every run logged (a sweep joined with an
    arm run later may have metrics the earlier runs lack)."""
    logged = set.intersection(*(set(run.metrics) for run in runs))
    anywhere = {k for run in runs for k in run.metrics}
    # with MSE as the loss (eliret's regression output) the loss column would repeat it
    names = [n for n in REPORTED if not (n == "loss" and f"{split}/mse" in logged)]
    metrics = [f"{split}/{name}" for name in names if f"{split}/{name}" in logged]
    return [headline, *(m for m in metrics if m != headline)] if headline in anywhere else metrics


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
    rounds = table.sort_values("seed", kind="stable").groupby(list(keys), sort=False)["best round"].agg(lambda r: ",".join(r))
    return grouped.merge(rounds.reset_index(), on=list(keys), how="left")


def checkpoint_selection(runs: Sequence[Run]) -> str:
    """How the runs chose the checkpoint they report: the monitored metric and, where the data
    can carry a cue, which validation split."""
    monitor = runs[0].value("callbacks.model_checkpoint.monitor", "val/loss")
    mode = runs[0].value("callbacks.model_checkpoint.mode", "min")
    return f"the checkpoint with the best validation `{monitor}` ({mode}){_validation_split(runs)}"


def _validation_split(runs: Sequence[Run]) -> str:
    """Which validation images chose the checkpoints, on a set whose validation split can carry a
    cue (``data.balanced_val``): a cued one rewards the cue."""
    balanced = {value for value in (run.value("data.balanced_val") for run in runs) if value is not None}
    if not balanced:
        return ""
    if balanced == {True}:
        return " on the balanced validation split (half cue-aligned, half reversed)"
    if balanced == {False}:
        return " on a validation split cued like the training set"
    return " on a balanced validation split in some runs and a cued one in others (`data.balanced_val`)"


@dataclass
class SweepData:
    """What every section of a sweep report reads: the runs, the swept keys, the one table of
    their metrics, and which metrics the study reports."""

    ok: list[Run]
    failed: list[Run]
    sources: Sequence[Path]
    out: Path
    study: confirmatory.Study | None
    headline: str
    keys: list[str]
    table: pd.DataFrame
    metrics: list[str]  # the split's reported metrics, then the mean over shifts of the headline
    robust: list[str]
    in_final_round: list[str]
    shifts: list[str]
    per_shift: dict[str, str]
    final_per_shift: dict[str, str]
    splits: dict[str, str]

    @property
    def split(self) -> str:
        return self.headline.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.headline.split("/", 1)[1]

    @property
    def groups(self) -> list[str]:
        return self.keys or ["runs"]


def sweep_data(runs: Sequence[Run], sources: Sequence[Path], out: Path, headline: str | None) -> SweepData:
    ok = [r for r in runs if r.metrics]
    failed = [r for r in runs if not r.metrics]
    if not ok:
        raise ValueError(f"no run of {', '.join(str(s) for s in sources)} finished (no metrics); nothing to report.")
    study = confirmatory.study_of(ok)
    headline = headline or (study_headline(study.primary) if study else "test/miou")
    split, name = headline.split("/", 1)
    keys = stats.swept_keys(runs)
    metrics = reported_metrics(ok, split, headline)
    logged = {k for run in ok for k in run.metrics}
    shifts = shift_names(ok, split)
    robust = [f"{split}_shift/{name}"] if f"{split}_shift/{name}" in logged else []
    in_final_round = [f"{stats.FINAL_ROUND}{m}" for m in (*metrics, *robust) if f"{stats.FINAL_ROUND}{m}" in logged]
    per_shift = {s: f"{split}_shift/{s}/{name}" for s in shifts}
    final_per_shift = {s: f"{stats.FINAL_ROUND}{m}" for s, m in per_shift.items() if f"{stats.FINAL_ROUND}{m}" in logged}
    splits = test_splits(ok, name)
    table = stats.runs_table(ok, keys, [*metrics, *robust, *in_final_round, *per_shift.values(), *final_per_shift.values(), *splits.values()])
    return SweepData(
        ok, failed, sources, out, study, headline, keys, table, [*metrics, *robust], robust, in_final_round, shifts, per_shift, final_per_shift, splits
    )


def header_section(data: SweepData, runs: Sequence[Run]) -> list[str]:
    ok, failed = data.ok, data.failed
    seeds = sorted(data.table.seed.unique())
    title = data.study.name if data.study else str(ok[0].value("task_name", data.sources[0].name))
    return [
        f"# Study report: `{title}`",
        "",
        f"- from {', '.join(f'`{source_name(s)}`' for s in data.sources)}: {len(runs)} jobs, {len(ok)} finished, {len(failed)} without results"
        + (f" ({', '.join(r.path.name for r in failed)})" if failed else ""),
        f"- swept: {', '.join(f'`{k}`' for k in data.keys) or 'nothing'}; seeds {', '.join(map(str, seeds))}",
        f"- metrics: `{data.split}/*` on the {data.split} split, from {checkpoint_selection(ok)} of each run; "
        "↑ higher is better for mIoU / Dice / accuracy, ↓ lower for loss / MSE / Rand error / VI",
        "- std: sample standard deviation over seeds (n - 1); every run and its metrics: `sweep_summary.csv`",
        "",
    ]


def mean_section(data: SweepData) -> list[str]:
    table, keys = data.table, data.keys
    mean_table, dropped = narrowed(_with_best_rounds(_mean_std(stats.grouped(table, data.groups, data.metrics), data.metrics), table, keys), keys)
    lines = [
        "## Mean and spread over seeds",
        "",
        table_md(mean_table),
        "",
        (
            "best round: the reduction round each seed's selected checkpoint comes from, in seed order (1 = the first round: trained "
            "before any reduction, except for a run reduced once from a trained model's maps (`reduction.maps_from`), whose first "
            "round trains on the reduced set; — = no reduction)."
            if "best round" in mean_table
            else ""
        )
        + (f" Not shown here: {', '.join(f'`{c}`' for c in dropped)} (in `sweep_summary.csv`)." if dropped else ""),
        "",
    ]
    if data.robust:
        lines += [
            f"`{data.robust[0]}`: the mean over the shifts ({', '.join(data.shifts)}) and their severities 1-3 of each run's `robustness/robustness.csv`.",
            "",
        ]
    return lines


MODEL_FREE = {
    "oracle_keep_iou": "IoU with the oracle's keep=most mask",
    "object_recall": "object pixels kept",
    "cue_share": "share of the cue left",
}


def removal_measures_section(runs: Sequence[Run], keys: Sequence[str]) -> list[str]:
    """The model-free measures of each reduced setting's rounds (``rounds.csv``): what its maps
    kept, compared with the oracle, and how much of a known cue its fill left; mean ± std over
    seeds, per round."""
    rows = []
    for run in runs:
        if run.rounds is None or not any(c in run.rounds for c in MODEL_FREE):
            continue
        for record in run.rounds.to_dict("records"):
            rows.append({"setting": confirmatory.label(run, keys), "round": int(record["round"]), **{c: record.get(c, math.nan) for c in MODEL_FREE}})
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    shown = [c for c in MODEL_FREE if frame[c].notna().any()]
    summary = frame.groupby(["setting", "round"], sort=False)[shown].agg(["mean", "std", "count"])
    table = pd.DataFrame(
        {
            "setting": [name for name, _ in summary.index],
            "round": [round_ for _, round_ in summary.index],
            "n": summary[(shown[0], "count")].to_numpy(),
            **{MODEL_FREE[c]: [stats.mean_std(m, sd) for m, sd in zip(summary[(c, "mean")], summary[(c, "std")])] for c in shown},
        }
    )
    return [
        "## What the maps removed (model-free)",
        "",
        "Per reduced setting and round, from each run's `reduction/rounds.csv`, mean ± std over seeds: the IoU of the round's "
        "keep-masks with the masks the oracle (ground-truth relevance) would keep of the same pixels with keep=most (1: the "
        "oracle's choice; a keep=least arm is compared with it too), the share of the object's pixels kept (1: the whole object), "
        "and, on a set that knows its cue, the share of the cue left in the filled training images (1: untouched; 0: removed).",
        "",
        table_md(table),
        "",
    ]


def final_round_section(data: SweepData) -> list[str]:
    if not data.in_final_round:
        return []
    return [
        "## Selection inside the final round",
        "",
        "When a reduction hurts, the best checkpoint falls back to weights from before it (best round 1). Here each reduced "
        "run is scored at the best checkpoint *within its final round* (the same monitor), which is what training on the "
        "reduced set yields; runs without reduction keep their best checkpoint.",
        "",
        table_md(_mean_std(stats.grouped(data.table, data.groups, data.in_final_round), data.in_final_round)),
        "",
    ]


def last_epoch_section(data: SweepData) -> list[str]:
    final = stats.last_epoch(data.ok, data.keys, f"val/{data.name}")
    if final.empty:
        return []
    return [
        "## At the end of training, without checkpoint selection",
        "",
        "The validation metric after the last epoch (mean ± std over seeds): what training on the reduced "
        "set leads to, where selection may have fallen back to an earlier round.",
        "",
        table_md(final),
        "",
    ]


def baseline_section(data: SweepData) -> list[str]:
    table, keys = data.table, data.keys
    if not (table.baseline.any() and (~table.baseline).any()):
        return []
    lines = ["## Each reduction setting against the no-reduction baseline of the same seed", ""]
    lines += [
        f"{EXPLORATORY} Difference = setting − baseline, per seed; mean with its 95% t-interval over the pairs; wins = seeds where the setting is better.",
        "",
    ]
    # within the final round: the headline and its robustness only (the rest is in the table above)
    for metric in [*data.metrics, *(m for m in data.in_final_round if m.endswith(f"/{data.name}"))]:
        arrow = "↑" if stats.higher_is_better(metric) else "↓"
        lines += [f"**{metric}** ({arrow})", "", table_md(stats.paired_with_baseline(table, keys, metric)), ""]
    return lines


def random_section(data: SweepData) -> list[str]:
    table, keys = data.table, data.keys
    if stats.paired_with_random(table, keys, data.headline).empty:
        return []
    lines = [
        "## Each setting against random removal at the same kept fraction",
        "",
        f"{EXPLORATORY} Difference = setting − `method=random` at the same percentile, fill and seed (ROAR's control: without it an effect "
        "cannot be told apart from less input acting as a regulariser); mean with its 95% t-interval; wins = seeds where the "
        "setting is better.",
        "",
    ]
    for metric in [data.headline, *(m for m in (*data.robust, *data.in_final_round) if m.endswith(f"/{data.name}"))]:
        arrow = "↑" if stats.higher_is_better(metric) else "↓"
        lines += [f"**{metric}** ({arrow})", "", table_md(stats.paired_with_random(table, keys, metric)), "", beats_random(table, keys, metric), ""]
    return lines


def shift_section(data: SweepData) -> list[str]:
    if not data.shifts:
        return []
    table, keys, name, per_shift = data.table, data.keys, data.name, data.per_shift
    lines = [
        "## Robustness, shift by shift",
        "",
        f"`{name}` under each shift (mean over severities 1-3), mean ± std over seeds, best checkpoint:",
        "",
    ]
    by_shift = _mean_std(stats.grouped(table, data.groups, list(per_shift.values())), list(per_shift.values())).rename(
        columns={m: s for s, m in per_shift.items()}
    )
    lines += [part for chunk in column_chunks(by_shift, [*keys, "n"] if keys else ["runs", "n"]) for part in (table_md(chunk), "")]
    for title, columns in (("best checkpoint", per_shift), ("best checkpoint within the final round", data.final_per_shift)):
        for against, compare in (("the no-reduction baseline", stats.paired_with_baseline), ("`method=random`", stats.paired_with_random)):
            grid = paired_grid(table, keys, columns, compare) if columns and keys else pd.DataFrame()
            if not grid.empty:
                lines += [f"**Against {against}, {title}**: paired difference in `{name}` per shift, mean [95% interval] ({EXPLORATORY_WORDS})", ""]
                lines += [part for chunk in column_chunks(grid, keys) for part in (table_md(chunk), "")]
    return lines


def settings_plot_section(data: SweepData) -> list[str]:
    if data.study is not None:  # a study's arms: one point each (its settings are not one scale)
        values: dict[str, list[float]] = {}
        for run in data.ok:
            values.setdefault(confirmatory.label(run, data.keys), []).append(stats.metric_of(run, data.headline))
        if not plots.metric_by_arm(values, data.headline, data.out / "metric_vs_settings.png", data.split):
            return []
        return ["## The headline metric per arm", "", "![metric per arm](metric_vs_settings.png)", ""]
    if not plots.metric_vs_settings(data.table, data.keys, data.headline, data.out / "metric_vs_settings.png", data.split):
        return []
    return ["## The headline metric against each swept value", "", "![metric vs settings](metric_vs_settings.png)", ""]


def convergence_section(data: SweepData) -> list[str]:
    val_metric = f"val/{data.name}"
    conv = stats.convergence(data.ok, data.keys, val_metric)
    if conv.empty and all(run.epochs is None for run in data.ok):
        return ["## Convergence", "", "The per-epoch curves are not in a `sweep_summary.csv`; the epochs to 95% of the baseline need the run dirs.", ""]
    if conv.empty:
        return []
    arrow = "≥ 0.95 ×" if stats.higher_is_better(val_metric) else "≤ 1/0.95 ×"
    return [
        "## Convergence",
        "",
        f"Epochs counted from the start of training (and wall seconds, validation included) until `{val_metric}` first "
        f"reaches {arrow} the best validation score of the no-reduction run of the same seed; mean over the runs that reach it.",
        "",
        table_md(conv),
        "",
    ]


def curves_section(data: SweepData) -> list[str]:
    labels = {run.path: confirmatory.label(run, data.keys) for run in data.ok}
    if not plots.mean_curves(data.ok, labels, f"val/{data.name}", data.out / "curves.png"):
        return []
    return ["## Validation curves (mean over seeds)", "", "![validation curves](curves.png)", ""]


def failed_section(data: SweepData) -> list[str]:
    if not data.failed:
        return []
    return [
        "## Jobs without results",
        "",
        *(f"- `{r.path.name}`: {without_paths(' '.join(f'{k}={v}' for k, v in r.overrides.items()))}" for r in data.failed),
        "",
    ]


def sweep_report(runs: Sequence[Run], sources: Sequence[Path], out: Path, headline: str | None = None) -> Path:
    """report.md of the runs of one study (one or several sweeps, or their summaries): the
    confirmatory analysis its preset names first, then every exploratory table."""
    data = sweep_data(runs, sources, out, headline)
    lines = [
        *header_section(data, runs),
        *confirmatory_section(data.ok, data.keys, data.study),
        *convergence_warnings(data.ok, data.keys),
        *mean_section(data),
        *removal_measures_section(data.ok, data.keys),
        *final_round_section(data),
        *last_epoch_section(data),
        *baseline_section(data),
        *random_section(data),
        *shift_section(data),
        *settings_plot_section(data),
        *convergence_section(data),
        *test_splits_section(data.table, data.keys, data.splits),
        *curves_section(data),
        *early_exit_section(data.ok, data.keys),
        *failed_section(data),
    ]
    return _write(out, lines)


def run_report(run: Run, out: Path) -> Path:
    lines = [
        f"# Run report: `{run.path.name}`",
        "",
        f"- run dir: `{run.path}`",
        f"- overrides: `{' '.join(f'{k}={v}' for k, v in run.overrides.items()) or 'none'}`",
        f"- final metrics from {checkpoint_selection([run])}" + (f" (epoch {run.best_epoch}, counted from 0)" if run.best_epoch is not None else ""),
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
