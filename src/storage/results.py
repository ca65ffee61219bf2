"""Writing and showing a run's final metrics."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from src.storage.atomic import write_bytes_atomic


def write_json_atomic(path: Path, payload: Mapping[str, object]) -> None:
    write_bytes_atomic(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def write_csv_atomic(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Rows as CSV, columns in order of first appearance (a row may lack some), written whole."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buffer.getvalue().encode())


def metrics_table(metrics: Mapping[str, float], title: str | None) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metrics):
        table.add_row(name, f"{metrics[name]:.6g}")
    return table


def console() -> Console:
    """A console that does not squeeze tables to 80 columns when output is piped to a log."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def print_metrics(metrics: Mapping[str, float], title: str) -> None:
    """``title`` on one line of its own (a table's title wraps to the table's width), then the table."""
    out = console()
    out.print(title, soft_wrap=True, highlight=False)
    out.print(metrics_table(metrics, title=None))
