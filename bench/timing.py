"""Side-by-side timing on a shared, noisy machine: the arms of a comparison run interleaved
(A B A B ...) and each figure is the median of its repetitions, so a slow spell hits every arm."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(arms: dict[str, Callable[[], object]], repetitions: int) -> dict[str, list[float]]:
    """Seconds of every arm in each of ``repetitions`` rounds; within a round the arms run one
    after another, and the order rotates between rounds so no arm always runs first."""
    names = list(arms)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repetitions):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(seconds(arms[name]))
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(memory_gib, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg()[0],
    }


def run_probe(module: str, *args: str, timeout: int = 600) -> dict[str, object]:
    """Run ``python -m <module> <args>`` in a fresh process (so its peak memory is its own) and
    return the JSON object it prints on its last line."""
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "WANDB_MODE": "offline"})
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
