"""Shared fixtures: configs composed with Hydra's compose API into tmp_path, one generated eliret
set per test session (generation is deterministic, so sharing it is safe), and the runs that
start with the suite (tests/helpers/early.py). Helpers live in tests/helpers/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from tests.helpers import cli
from tests.helpers.compose import compose_config
from tests.helpers.early import EarlyRuns

EARLY_RUNS = pytest.StashKey[EarlyRuns]()


def pytest_configure(config: pytest.Config) -> None:
    # the suite keeps two things running on two cores (the main thread and the started_early
    # lane, or two pytest-xdist workers): one thread each, children included. Two OpenMP teams
    # on two cores spin against each other.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # hermetic: a developer's shell may export these (HYDRA_FULL_ERROR while debugging Hydra,
    # SLURM_* inside an allocation); the tests and every child process they start run as a
    # user's shell would
    for name in [k for k in os.environ if k == "HYDRA_FULL_ERROR" or (k.startswith("SLURM_") and k != "SLURM_CONF")]:
        del os.environ[name]
    cli.SESSION_ENV.update(os.environ)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # the unit tests first, on one core beside the started_early lane on the other; then the
    # end-to-end tests, most of which keep both cores busy themselves; the tests that collect
    # the early runs last (a stable sort: file order otherwise)
    items.sort(key=lambda item: (item.get_closest_marker("started_early") is not None, item.get_closest_marker("slow") is not None))


@pytest.fixture(scope="session", autouse=True)
def early_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Starts the runs of every selected ``started_early`` test when the session's first test
    begins (tests/helpers/early.py); their tests, sorted last, collect them. Under pytest-xdist
    each worker collects everything, so the worker that runs such a test starts it then."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    runs = EarlyRuns(tmp_path_factory)
    request.config.stash[EARLY_RUNS] = runs
    marked = [(item, item.get_closest_marker("started_early")) for item in request.session.items]
    early = [(item, marker) for item, marker in marked if marker is not None]
    early.sort(key=lambda pair: not pair[1].kwargs.get("first", False))  # stable: item order otherwise
    for item, marker in early:
        runs.start(getattr(item.module, marker.args[0]), serial=marker.kwargs.get("serial", False))
    yield
    runs.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    runs = config.stash.get(EARLY_RUNS, None)
    if runs is not None and runs.times:
        terminalreporter.section("runs started with the suite")
        for name, (ended, seconds) in sorted(runs.times.items(), key=lambda item: item[1][0]):
            terminalreporter.write_line(f"{name}: ran {seconds:.1f} s on its thread, ended {ended:.1f} s into the session")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir shared by the session; eliret is generated into it on first use."""
    return tmp_path_factory.mktemp("data")


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
