"""``sweep_summary.csv`` at a multirun's root, rewritten atomically as each job ends.

A Hydra callback. Jobs may end in other processes (joblib, submitit), so each job leaves its own
record (``job.json`` in its run dir) and the summary is rebuilt from every record on disk, under
a file lock; an interrupted sweep still has a correct summary of the jobs that finished.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src.config.user_errors import user_error_in
from src.runs.rerun import SWEEP_FINISHED, SWEEP_LOCK
from src.storage.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

SUMMARY = "sweep_summary.csv"
JOB_RECORD = "job.json"
FIRST_COLUMNS = ("job", "overrides", "status", "error")
LAST_COLUMNS = ("best_epoch", "wall_seconds", "run_dir")


# the sweeps this process runs, each with its lock's open file: kept off the callback, which the
# joblib and submitit launchers pickle into their workers
_HELD: dict[str, IO[str]] = {}


class SweepSummary(Callback):
    """One row per finished job: number, overrides, ok/failed (with the error's last line), the
    best checkpoint's ``val/*`` and ``test/*`` metrics, wall seconds and run dir."""

    def __init__(self, filename: str = SUMMARY) -> None:
        self.filename = filename
        self._started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # held for the sweep's length: `ckpt_path=last` refuses to continue a sweep still running
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        lock = open(sweep_dir / SWEEP_LOCK, "w")  # noqa: SIM115 - open until the sweep ends
        fcntl.flock(lock, fcntl.LOCK_EX)
        _HELD[str(sweep_dir)] = lock

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.time()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        record = job_record(config, job_return, run_dir, wall_seconds=time.time() - self._started)
        earlier = _read_record(run_dir / JOB_RECORD)
        if earlier is not None and earlier.get("status") == "ok" and earlier.get("metrics") == record["metrics"]:
            record["wall_seconds"] = earlier["wall_seconds"]  # a continued sweep read it: its time is the first run's
        write_bytes_atomic(run_dir / JOB_RECORD, json.dumps(record, indent=2).encode())
        self._rewrite(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        path = self._rewrite(sweep_dir)
        # `-m ... ckpt_path=last` continues only a sweep without this mark (src/runs/rerun.py)
        write_bytes_atomic(sweep_dir / SWEEP_FINISHED, json.dumps({"ended": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        held = _HELD.pop(str(sweep_dir), None)
        if held is not None:
            held.close()  # releases the lock
        log.info("sweep summary: %s", path)

    def _rewrite(self, sweep_dir: Path) -> Path:
        path = sweep_dir / self.filename
        with _locked(sweep_dir / f".{self.filename}.lock"):
            write_bytes_atomic(path, summary_csv(read_job_records(sweep_dir)).encode())
        return path


def job_record(config: DictConfig, job_return: JobReturn, run_dir: Path, wall_seconds: float) -> dict[str, Any]:
    failed = job_return.status != JobStatus.COMPLETED
    error = ""
    if failed:
        # the cause itself, not Hydra's instantiation wrapper around it
        exc = user_error_in(job_return._return_value) or _root_cause(job_return._return_value)
        lines = str(exc).strip().splitlines() or [""]
        error = f"{type(exc).__name__}: {lines[-1]}"
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() and not failed else {}
    run_info_path = run_dir / "run.json"
    run_info = json.loads(run_info_path.read_text()) if run_info_path.exists() else {}
    return {
        "job": int(config.hydra.job.num),
        "overrides": " ".join(config.hydra.overrides.task),
        "status": "failed" if failed else "ok",
        "error": error,
        "metrics": metrics,
        "best_epoch": run_info.get("best_epoch"),
        "wall_seconds": round(wall_seconds, 2),
        "run_dir": str(run_dir),
    }


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def read_job_records(sweep_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(Path(sweep_dir).glob(f"*/{JOB_RECORD}")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:  # a record being replaced: the next rewrite has it
            log.warning("skipping %s: %s", path, exc)
    return sorted(records, key=lambda r: r["job"])


def summary_csv(records: list[dict[str, Any]]) -> str:
    """Rows ordered by job number; metric columns: every val/* then test/* metric any job has."""
    names = sorted({k for r in records for k in r["metrics"] if k not in LAST_COLUMNS}, key=lambda k: (not k.startswith("val/"), k))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*FIRST_COLUMNS, *names, *LAST_COLUMNS])
    for r in records:
        writer.writerow([*(r[c] for c in FIRST_COLUMNS), *(r["metrics"].get(k, "") for k in names), *(r.get(c, "") for c in LAST_COLUMNS)])
    return buffer.getvalue()


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
