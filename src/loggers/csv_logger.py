"""A CSV logger that a resumed run extends instead of overwriting.

Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts. A run resumed into its
own directory keeps the rows of the epochs its checkpoint covers, drops the rows the killed run
logged after it (the resumed run logs those again) and appends.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from src.storage.results import write_csv_atomic


class ResumableCSVLogger(CSVLogger):
    resume_after: tuple[int, int] | None = None  # (epoch, global step) of the resumed checkpoint

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            if self.resume_after is not None:
                metrics = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
                if metrics.is_file():
                    trim_metrics(metrics, *self.resume_after)
                self._experiment = _AppendingWriter(log_dir=self.log_dir)
            else:
                self._experiment = ExperimentWriter(log_dir=self.log_dir)
        return self._experiment


class _AppendingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        if os.path.isfile(self.metrics_file_path):  # the columns already in the file
            with open(self.metrics_file_path, newline="") as file:
                self.metrics_keys = sorted(next(csv.reader(file), []))

    def _check_log_dir_exists(self) -> None:
        """Keep the resumed run's metrics file (the base class deletes it)."""


def trim_metrics(path: Path, epoch: int, step: int) -> None:
    """Keep the rows of epochs <= ``epoch`` (rows without an epoch: steps <= ``step``)."""
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))

    def covered(row: dict[str, str]) -> bool:
        if row.get("epoch"):
            return float(row["epoch"]) <= epoch
        return not row.get("step") or float(row["step"]) <= step

    kept = [row for row in rows if covered(row)]
    if kept:
        write_csv_atomic(path, kept)
    else:
        path.unlink()
