"""Shared fixtures: configs composed with Hydra's compose API into tmp_path, and one generated
eliret set per test session (generation is deterministic, so sharing it is safe)."""

from __future__ import annotations

import csv
import hashlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, open_dict

from src.config.compose import compose_config as compose_run
from src.reduction.round_outputs import read_masks

T = TypeVar("T")

# the suite keeps two things running on two cores (the main thread and the started_early lane
# below, or two pytest-xdist workers): one thread each, children included. Two OpenMP teams on two
# cores spin against each other (the quick bench took 99 s instead of 13).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# hermetic: a developer's shell may export these (HYDRA_FULL_ERROR while debugging Hydra, SLURM_*
# inside an allocation); the tests and every child process they start run as a user's shell would
for name in [k for k in os.environ if k == "HYDRA_FULL_ERROR" or (k.startswith("SLURM_") and k != "SLURM_CONF")]:
    del os.environ[name]
# what child processes started off the main thread see: not a variable that a test running
# meanwhile on the main thread has set with monkeypatch (SLURM_JOB_ID, a PATH with a fake scontrol)
SESSION_ENV = dict(os.environ)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # the tests whose runs start with the suite (below) last, then the end-to-end tests first:
    # under pytest-xdist the long ones start early and the unit tests fill the workers' ends (a
    # stable sort: file order otherwise)
    items.sort(key=lambda item: (item.get_closest_marker("started_early") is not None, item.get_closest_marker("slow") is None))


def pytest_collection_finish(session: pytest.Session) -> None:
    # runs that mostly wait (on a scheduler's time limit, or on one core while the other idles)
    # start now, beside the rest of the suite; their tests, run last, collect them. The
    # `serial=True` ones share one lane, one after another (`first=True` ones at its head), so
    # the suite keeps about two things running on two cores. Under pytest-xdist each worker
    # collects everything, so the worker that runs such a test starts it.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    markers = [(item, item.get_closest_marker("started_early")) for item in session.items]
    early = [(item, marker) for item, marker in markers if marker is not None]
    early.sort(key=lambda pair: not pair[1].kwargs.get("first", False))  # stable: item order otherwise
    lane = serial_lane()
    for item, marker in early:
        start = getattr(item.module, marker.args[0])
        started(start, session.config._tmp_path_factory, lane if marker.kwargs.get("serial") else None)  # the tmp_path_factory fixture's object


def serial_lane() -> Callable[[Callable[[], None]], None]:
    """A daemon thread that runs the jobs put on it one after another (pytest exits without it)."""
    jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def work() -> None:
        while True:
            jobs.get()()

    threading.Thread(target=work, name="started_early lane", daemon=True).start()
    return jobs.put


def started(
    start: Callable[[pytest.TempPathFactory], Callable[[], T]],
    tmp_path_factory: pytest.TempPathFactory,
    lane: Callable[[Callable[[], None]], None] | None = None,
) -> Future[T]:
    """Once per process: ``start`` launches its runs or only prepares them (a skip or a failure is
    kept for the test), and the function it returns does the rest, on ``lane`` or on a daemon
    thread of its own (pytest exits without it)."""
    # kept on the test module's function: this file is imported twice, as `conftest` by pytest
    # and as `tests.conftest` by tests, so a registry here would exist twice
    if hasattr(start, "future"):
        return start.future
    future: Future[T] = Future()
    start.future = future
    try:
        gather = start(tmp_path_factory)
    except BaseException as error:  # a skip too (no scheduler here): the test raises it
        future.set_exception(error)
        return future

    def run() -> None:
        try:
            future.set_result(gather())
        except BaseException as error:
            future.set_exception(error)

    if lane is None:
        threading.Thread(target=run, name=start.__name__, daemon=True).start()
    else:
        lane(run)
    return future


def in_own_dir(body: Callable[[Path], T]) -> Callable[[pytest.TempPathFactory], Callable[[], T]]:
    """A start function for ``started`` that only prepares: ``body`` runs later, in a fresh dir."""

    def start(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], T]:
        path = tmp_path_factory.mktemp(body.__name__)
        return lambda: body(path)

    start.__name__ = start.__qualname__ = body.__name__
    return start


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir shared by the session; eliret is generated into it on first use."""
    return tmp_path_factory.mktemp("data")


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    cfg = compose_run(config_name, overrides, output_dir)
    with open_dict(cfg):
        cfg.paths.log_dir = str(output_dir)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path, data_root: Path) -> Callable[..., DictConfig]:
    """``make_cfg("train", "model=fcn", ...)``: a composed config writing into tmp_path, on the
    session's data, on the CPU, quiet (no progress bar, no logger)."""

    def _make(config_name: str = "train", *overrides: str) -> DictConfig:
        defaults = [f"paths.data_dir={data_root}", "trainer=cpu", "logger=none"]
        if config_name == "train":
            defaults.append("callbacks.progress_bar=null")
        return compose_config(config_name, defaults + list(overrides), tmp_path)

    return _make


def run_cli(module: str, *args: str, project_root: Path, timeout: int = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` as a user would, with outputs and data under ``project_root``
    (``env``: extra environment variables)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=_cli_env(project_root, env), capture_output=True, text=True, timeout=timeout)


def start_cli(module: str, *args: str, project_root: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``run_cli``'s run, started and not waited for (its stdout dropped, its stderr kept)."""
    command = [sys.executable, "-m", module, *args]
    return subprocess.Popen(command, cwd=ROOT, env=_cli_env(project_root, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _cli_env(project_root: Path, env: dict[str, str] | None) -> dict[str, str]:
    return {**child_env(), "WANDB_MODE": "offline", "PROJECT_ROOT": str(project_root), **(env or {})}


def child_env() -> dict[str, str]:
    """The environment a child process starts with: the session's, off the main thread."""
    return dict(os.environ if threading.current_thread() is threading.main_thread() else SESSION_ENV)


def logged_epochs(run: Path) -> int:
    """Epochs a run has logged so far (rows of its csv/metrics.csv with a val/loss)."""
    metrics = run / "csv" / "metrics.csv"
    if not metrics.is_file():
        return 0
    with metrics.open() as file:
        return sum(1 for row in csv.DictReader(file) if row.get("val/loss"))


def ddp_reduction_round(project_root: Path, *overrides: str) -> tuple[np.ndarray, str, str]:
    """One reduction round trained by two gloo processes (``src.train trainer=ddp``): the masks
    it saved, their sha256 and the run's output (where each rank logs the masks' hash)."""
    result = run_cli(
        "src.train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "reduction.rounds=1",
        "reduction.epochs_per_round=1",
        "reduction.batch_size=16",
        "trainer.limit_train_batches=2",
        "test=false",
        "logger=none",
        "callbacks.progress_bar=null",
        *overrides,
        project_root=project_root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (project_root / "outputs" / "train" / "runs").iterdir()
    saved = read_masks(run / "reduction" / "round_01" / "masks.npz")
    return saved, hashlib.sha256(saved.tobytes()).hexdigest(), result.stdout + result.stderr
