"""hydra-submitit-launcher's Slurm launcher with what a first run on a real site needs:

- a job that Slurm refuses (an unknown partition, resources no node has) is one error line that
  quotes sbatch and names the ``hydra.launcher`` option to set (exit status 2);
- on a site without job accounting, submitit's "Bypassing sacct error" warning and sacct's own
  error, repeated at every poll, become one line.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hydra.core.utils import JobReturn

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher

log = logging.getLogger(__name__)
# what sbatch says, and the options that decide it
REFUSALS = (
    ("invalid partition", "hydra.launcher.partition (sinfo lists the partitions{partitions})"),
    ("invalid account", "hydra.launcher.account"),
    ("invalid qos", "hydra.launcher.qos"),
    ("time limit", "hydra.launcher.timeout_min"),
    (
        "node configuration is not available",
        "hydra.launcher.gpus_per_node (trainer.accelerator=cpu asks for none), cpus_per_task, mem_gb or nodes",
    ),
    ("memory specification", "hydra.launcher.mem_gb"),
)


def accounting_answers() -> bool:
    """Whether ``sacct`` works here (a site without accounting storage answers with an error)."""
    try:
        return subprocess.run(["sacct", "-n", "-X", "-o", "JobID", "-S", "now"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@contextmanager
def polling_without_sacct_if_absent() -> Iterator[None]:
    """On a site without accounting, submitit polls sacct anyway and warns at every poll (and
    sacct prints its own error each time); it then learns that a job ended from the result file
    the job writes. Say that once and skip the failing polls."""
    from submitit.slurm.slurm import SlurmJob

    if accounting_answers():
        yield
        return
    log.warning("sacct does not answer (no job accounting on this site): a job's end is read from the result file it writes")
    watcher = SlurmJob.watcher
    watcher._make_command = lambda: None  # the instance attribute shadows the polling command
    try:
        yield
    finally:
        del watcher._make_command


def refusal_message(error: BaseException) -> str | None:
    """The user-facing message for sbatch refusing a job, or None when ``error`` is not that."""
    text = str(error)
    if "sbatch" not in text and "Submission" not in text:
        return None
    said = next((line.strip() for line in text.splitlines() if "error:" in line.lower()), text.strip().splitlines()[-1])
    lowered = text.lower()
    for cue, option in REFUSALS:
        if cue in lowered:
            return f"Slurm refused the job ({said}); set {option.format(partitions=_partitions())}."
    return f"Slurm refused the job ({said}); set the matching hydra.launcher option (partition, account, gpus_per_node, cpus_per_task, mem_gb, timeout_min)."


def _partitions() -> str:
    try:
        listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f": {', '.join(p.rstrip('*') for p in listed)}" if listed else ""


class SlurmLauncher(SubmititSlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        with polling_without_sacct_if_absent():
            try:
                return super().launch(job_overrides, initial_job_idx)
            except Exception as error:
                message = refusal_message(error)
                if message is None:
                    raise
        # nothing was submitted: one line, as for any other bad input (src.config.user_errors)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
