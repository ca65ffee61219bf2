"""What a process learns from Slurm's environment: whether it is a task of a job step, its rank,
and the name a step's run dir gets. No Slurm command is run here."""

from __future__ import annotations

import os

# Slurm's ids for the batch and extern steps (no number of their own)
_SPECIAL_STEPS = {"4294967294", "4294967295", "4294967292", "batch", "extern", "interactive"}


def job_id() -> str | None:
    """The job as ``scontrol requeue`` names it: ``<array job>_<task>`` in an array, else the id."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def step_stamp() -> str | None:
    """``slurm-<job>.<step>`` for a task of an ``srun`` step, else None. Every task of a step
    shares it (the DDP ranks write one run dir), and a requeued job's steps get the same ids
    again (the requeued run finds its dir)."""
    job, step = job_id(), os.environ.get("SLURM_STEP_ID")
    if not job or step is None or step in _SPECIAL_STEPS:
        return None
    return f"slurm-{job}.{step}"


def task_rank() -> int:
    """This task's rank within its ``srun`` step (0 outside one)."""
    if step_stamp() is None:
        return 0
    return int(os.environ.get("SLURM_PROCID", "0"))


def run_stamp(timestamp: str) -> str:
    """A run dir's last part: the step's stamp in an ``srun`` step, else ``timestamp``."""
    return step_stamp() or timestamp


def rank_suffix() -> str:
    """``""`` for rank 0, ``_rank<N>`` for the other tasks of a step: their Hydra files and logs
    sit beside rank 0's instead of over them."""
    rank = task_rank()
    return f"_rank{rank}" if rank else ""


def gpus_per_node(accelerator: str, devices: int) -> int | None:
    """The Slurm launcher's GPU request: none for a CPU run (no ``--gpus-per-node``), else one
    per device."""
    return None if accelerator == "cpu" else int(devices)
