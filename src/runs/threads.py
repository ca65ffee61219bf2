"""How many CPU threads a job's torch uses (``torch_threads``; null: chosen here).

torch's default, one thread per core, collapses when another process keeps a core busy: its
parallel regions wait at each barrier for the thread that shares a core (on the 2-core box a short
eliret fit took 3x longer per epoch with 2 threads than with 1 while a busy loop ran, and up to
50x on another CPU). Passive waiting (``OMP_WAIT_POLICY=PASSIVE``) halved that but cost 2x on an
idle machine. So the default counts the cores this process may use (its CPU affinity: a Slurm
allocation, ``taskset``) that are idle now, sampled for a fifth of a second, and uses that many.
``make bench``'s ``threads`` section measures the choice against 1 thread and every core.

The thread count can change a fit's numbers in the last digits (a different reduction order), so
``run.json`` records it; fix ``torch_threads`` to reproduce a run on a busier or idler machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

SAMPLE_SECONDS = 0.2


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str

    def as_record(self) -> dict[str, object]:
        return {"torch_threads": self.threads, "torch_threads_reason": self.reason}


def usable_cores() -> list[int]:
    """The cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(psutil.cpu_count() or 1))


def idle_cores(cores: list[int], seconds: float = SAMPLE_SECONDS) -> float:
    """How many of ``cores`` were idle over the next ``seconds`` (this process sleeps meanwhile)."""
    busy = psutil.cpu_percent(interval=seconds, percpu=True)
    return sum(1.0 - busy[core] / 100.0 for core in cores if core < len(busy))


def choose_threads(requested: int | None) -> ThreadChoice:
    """``requested`` if given; else ``OMP_NUM_THREADS`` if set (a launcher or the user chose);
    else the idle usable cores, at least 1."""
    if requested:
        return ThreadChoice(int(requested), "torch_threads")
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return ThreadChoice(int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS")
    cores = usable_cores()
    idle = idle_cores(cores)
    threads = max(1, min(len(cores), round(idle)))
    return ThreadChoice(threads, f"auto: {idle:.1f} of the {len(cores)} usable cores idle at the start")
