"""Report on a run or a study from the files they wrote (no re-training):
``python -m src.report <run dir | sweep dir | sweep_summary.csv> [more sweeps or CSVs] [--metric test/miou] [--out DIR]``.

Several sweeps (or their summaries) are reported as one study, e.g. an arm run later beside the
first sweep. Writes ``report.md`` beside its PNG plots (default: ``<first path's dir>/report/``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from src.config.errors import UserInputError
from src.config.registration import register

register()  # the configs' resolvers and schemas, in this process and in a sweep's workers


def report(path: Path | Sequence[Path], out: Path | None = None, metric: str | None = None) -> Path:
    """Write the report of the run, or of the sweeps and summaries at ``path``; returns the
    report.md path. ``metric``: the exploratory tables' headline (default: the study's primary
    metric on the test split, else test/miou)."""
    paths = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
    for source in paths:
        if not source.exists():
            raise UserInputError(f"{source} does not exist; pass a run dir (outputs/<task>/runs/<time>), a sweep dir or a sweep_summary.csv.")
    if metric is not None and not metric.startswith(("val/", "test/")):
        raise UserInputError(f"--metric {metric!r} must name a val/ or test/ metric, e.g. test/miou.")
    # pandas, statsmodels, matplotlib and the model classes: only once the arguments are checked
    from src.sweep_report.markdown import run_report, sweep_report
    from src.sweep_report.runs import is_sweep, load_run, load_sources

    first = paths[0]
    out = Path(out) if out else (first if first.is_dir() else first.parent) / "report"
    out.mkdir(parents=True, exist_ok=True)
    if len(paths) == 1 and first.is_dir() and not is_sweep(first):
        return run_report(load_run(first), out)
    return sweep_report(load_sources(paths), paths, out, metric)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, nargs="+", help="a run dir, or sweep (multirun) dirs and sweep_summary.csv files reported together")
    parser.add_argument("--metric", default=None, help="headline metric (default: the study's primary on the test split, else test/miou)")
    parser.add_argument("--out", type=Path, default=None, help="where report.md and its plots go (default: <path>/report)")
    args = parser.parse_args(argv)
    try:
        written = report(args.path, args.out, args.metric)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"report written to {written}")


if __name__ == "__main__":
    main()
