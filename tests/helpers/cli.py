"""The command lines a user types, as subprocesses of the test session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
# what child processes started off the main thread see (set by tests/conftest.py when the session
# starts): not a variable that a test running meanwhile on the main thread has set with
# monkeypatch (SLURM_JOB_ID, a PATH with a fake scontrol)
SESSION_ENV: dict[str, str] = {}


def run_cli(module: str, *args: str, project_root: Path, timeout: int = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` as a user would, with outputs and data under ``project_root``
    (``env``: extra environment variables)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=_cli_env(project_root, env), capture_output=True, text=True, timeout=timeout)


def start_cli(module: str, *args: str, project_root: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``run_cli``'s run, started and not waited for (its stdout dropped, its stderr kept), in a
    session of its own, so ``kill_all`` ends it with every process it started (a sweep's workers)."""
    command = [sys.executable, "-m", module, *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=_cli_env(project_root, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def kill_all(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` and everything in its session, as a dying machine would."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _cli_env(project_root: Path, env: dict[str, str] | None) -> dict[str, str]:
    return {**child_env(), "WANDB_MODE": "offline", "PROJECT_ROOT": str(project_root), **(env or {})}


def child_env() -> dict[str, str]:
    """The environment a child process starts with: the session's, off the main thread."""
    return dict(os.environ if threading.current_thread() is threading.main_thread() else SESSION_ENV)
