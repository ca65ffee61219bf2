"""robustness.png: each metric against severity, one line per shift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from src.loggers.figures import subplots


def severity_curves(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """One panel per metric, severity on x (0 = clean), a line per shift."""
    metrics = [k for k in rows[0] if k not in ("shift", "severity")]
    shifts = list(dict.fromkeys(r["shift"] for r in rows))
    columns = min(4, len(metrics))
    n_rows = -(-len(metrics) // columns)
    fig, axes = subplots(n_rows, columns, figsize=(3.6 * columns, 3.0 * n_rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for shift in shifts:
            points = sorted((r["severity"], r[metric]) for r in rows if r["shift"] == shift)
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", ms=3, label=shift)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("severity")
        ax.set_xticks(sorted({r["severity"] for r in rows}))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
