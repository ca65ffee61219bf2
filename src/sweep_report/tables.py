"""Markdown tables for reports."""

from __future__ import annotations

import math

import pandas as pd


def table_md(frame: pd.DataFrame) -> str:
    """A DataFrame as a markdown table; floats with 4 significant digits, NaN as "—"."""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value)
