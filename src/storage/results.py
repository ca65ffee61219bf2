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


FINAL_ROUND = "final_round/"
# the best checkpoint's place, on the rows where the final round's own stands (final_round/epoch, /round)
POSITION = {"best_epoch": "epoch", "best_round": "round"}


def metrics_table(metrics: Mapping[str, float], title: str | None, columns: tuple[str, str] = ("value", "final round")) -> Table:
    """One row per metric; where ``final_round/<metric>`` values exist (a reduction run), they
    stand in a second column beside ``<metric>``, so the model before and after the reduction
    are read side by side (``columns``: the two headers)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column(columns[0], justify="right")
    paired = any(name.startswith(FINAL_ROUND) for name in metrics)
    if paired:
        table.add_column(columns[1], justify="right")
    named = {POSITION.get(name, name): value for name, value in metrics.items()}
    for name in sorted({name.removeprefix(FINAL_ROUND) for name in named}):
        cells = [named.get(name), *([named.get(FINAL_ROUND + name)] if paired else [])]
        table.add_row(name, *("" if value is None else f"{value:.6g}" for value in cells))
    return table


def console() -> Console:
    """A console that does not squeeze tables to 80 columns when output is piped to a log."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def print_metrics(metrics: Mapping[str, float], title: str, columns: tuple[str, str] = ("value", "final round")) -> None:
    """``title`` on one line of its own (a table's title wraps to the table's width), then the table."""
    out = console()
    out.print(title, soft_wrap=True, highlight=False)
    out.print(metrics_table(metrics, title=None, columns=columns))
