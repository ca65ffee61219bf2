"""How many CPU threads a job's torch uses (``torch_threads``; null: chosen here).

torch's default, one thread per core, collapses when another process keeps a core busy: its
parallel regions wait at each barrier for the thread that shares a core (on the 2-core box a short
eliret fit took 2.8x longer with 2 threads than with 1 while a busy loop ran; 54x slower epochs
were reported in the issue that asked for this). Passive waiting (``OMP_WAIT_POLICY=PASSIVE``) halved that but cost 2x on an
idle machine. So the default counts the cores this process may use (its CPU affinity: a Slurm
allocation, ``taskset``; at most a cgroup's CPU quota and ``OMP_NUM_THREADS`` where set) that are
idle now, sampled for a fifth of a second, and uses that many.
``make bench``'s ``threads`` section measures the choice against 1 thread and every core.

The thread count can change a fit's numbers in the last digits (a different reduction order), so
``run.json`` records it; fix ``torch_threads`` to reproduce a run on a busier or idler machine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.2
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str

    def as_record(self) -> dict[str, object]:
        return {"torch_threads": self.threads, "torch_threads_reason": self.reason}


def usable_cores() -> list[int]:
    """The cores this process may run on (its affinity: a Slurm allocation, ``taskset``)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(psutil.cpu_count() or 1))


def cpu_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """The cores' worth of time a cgroup v2 quota allows (``docker --cpus``), or None."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def idle_cores(cores: list[int], seconds: float = SAMPLE_SECONDS) -> float:
    """How many of ``cores`` were idle over the next ``seconds`` (this process sleeps meanwhile)."""
    busy = psutil.cpu_percent(interval=seconds, percpu=True)
    return sum(1.0 - busy[core] / 100.0 for core in cores if core < len(busy))


def choose_threads(requested: int | None) -> ThreadChoice:
    """``requested`` if given; else the usable cores idle at the start (a core counts once it is
    at least three quarters idle), at most a cgroup's quota and ``OMP_NUM_THREADS`` where set (a
    launcher's share, e.g. joblib's workers), at least 1."""
    if requested:
        return ThreadChoice(int(requested), "torch_threads")
    cores = usable_cores()
    limits = {"usable cores": len(cores)}
    quota = cpu_quota()
    if quota is not None:
        limits["cgroup quota"] = max(1, math.ceil(quota))
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        limits["OMP_NUM_THREADS"] = int(os.environ["OMP_NUM_THREADS"])
    bounds = ", ".join(f"{name} {value}" for name, value in limits.items())
    if min(limits.values()) == 1:  # nothing to choose: no need to watch the machine
        return ThreadChoice(1, f"auto: at most 1 ({bounds})")
    idle = idle_cores(cores)
    threads = max(1, min(int(idle + 0.25), *limits.values()))
    return ThreadChoice(threads, f"auto: {idle:.1f} of the {len(cores)} usable cores idle at the start ({bounds})")
