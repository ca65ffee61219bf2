"""Report on a run or a sweep from the files they wrote (no re-training):
``python -m src.report <run dir | sweep dir> [--metric test/miou] [--out DIR]``.

Writes ``report.md`` beside its PNG plots (default: ``<dir>/report/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.config.errors import UserInputError
from src.reporting.markdown import run_report, sweep_report
from src.reporting.runs import is_sweep, load_run, load_sweep


def report(path: Path, out: Path | None = None, metric: str = "test/miou") -> Path:
    """Write the report of the run or sweep at ``path``; returns the report.md path."""
    path = Path(path)
    if not path.is_dir():
        raise UserInputError(f"{path} is not a directory; pass a run dir (outputs/<task>/runs/<time>) or a sweep dir.")
    if not metric.startswith(("val/", "test/")):
        raise UserInputError(f"--metric {metric!r} must name a val/ or test/ metric, e.g. test/miou.")
    out = Path(out) if out else path / "report"
    out.mkdir(parents=True, exist_ok=True)
    if is_sweep(path):
        return sweep_report(load_sweep(path), path, out, metric)
    return run_report(load_run(path), out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a run dir or a sweep (multirun) dir")
    parser.add_argument("--metric", default="test/miou", help="headline metric (default: test/miou)")
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
