"""The thread default (``torch_threads=null``, src/runs/threads.py) against 1 thread and every
usable core, on an idle machine and with one core kept busy by another process: the same short
eliret fit in a fresh process per run (so each run chooses its threads as a user's would), its
fit seconds read from the run's own log (start-up and the final test never count)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from bench.timing import interleaved, median
from src.runs.threads import usable_cores

TARGET_RATIO = 1.3  # the default's fit time over the best arm's, at most


def _fit_seconds(run_dir: Path) -> float:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return max(float(row["time/elapsed_s"]) for row in csv.DictReader(handle) if row.get("time/elapsed_s"))


def _arm(threads: str, data_dir: str, epochs: int, sink: list[float]) -> Callable[[], None]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # as a user's shell

    def run() -> None:
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "src.train", "reduction=none", f"trainer.max_epochs={epochs}", "test=false", "logger=csv"]
            command += [f"torch_threads={threads}", f"paths.data_dir={data_dir}", f"hydra.run.dir={out}"]
            subprocess.run(command, check=True, capture_output=True, env=env)
            sink.append(_fit_seconds(Path(out)))

    return run


@contextmanager
def one_core_busy() -> Iterator[None]:
    """Another process spinning on one core for the duration."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def measure(data_dir: str, epochs: int, repetitions: int) -> dict[str, dict]:
    """Per machine state: the median fit seconds of each arm (interleaved), and the default's
    ratio to the fastest arm, which the issue wants at most ``TARGET_RATIO``."""
    cores = len(usable_cores())
    arms = {"default": "null", "1 thread": "1", f"{cores} threads (every core)": str(cores)}
    results: dict[str, dict] = {}
    for state, context in (("idle", nullcontext), ("one core busy", one_core_busy)):
        sinks: dict[str, list[float]] = {name: [] for name in arms}
        with context():
            interleaved({name: _arm(threads, data_dir, epochs, sinks[name]) for name, threads in arms.items()}, repetitions)
        seconds = {name: median(values) for name, values in sinks.items()}
        ratio = seconds["default"] / min(seconds.values())
        results[state] = {"fit_seconds": seconds, "default_over_best": round(ratio, 2), "within_target": ratio <= TARGET_RATIO}
    results["epochs"] = {"epochs": epochs, "repetitions": repetitions, "cores": cores}
    return results
