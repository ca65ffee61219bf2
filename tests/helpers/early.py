"""Runs that start with the suite, beside the tests before them: runs that mostly wait (on a
scheduler's time limit, or on one core while the other idles).

To add one: in the test module, write ``name(tmp_path_factory)`` that launches or prepares the
test's runs and returns a function that finishes them and returns what the test checks (or
decorate ``body(path)`` with :func:`in_own_dir`: it runs later, in a fresh dir); mark the test
``@pytest.mark.started_early("name")`` (``serial=True``: one after another on one shared thread,
``first=True``: at its head) and collect the result in it with
``started(name, tmp_path_factory).result()``. The session fixture ``early_runs``
(tests/conftest.py) starts every selected test's function when the first test begins; under
pytest-xdist, or where a test runs alone, ``started`` runs the function when the test asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
Start = Callable[[pytest.TempPathFactory], Callable[[], Any]]

_futures: dict[Start, Future] = {}


class EarlyRuns:
    """Starts runs for the session: serial ones one after another on one thread, the others each
    on a thread of its own; :meth:`close` waits for what is running and drops what is not."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._lane = ThreadPoolExecutor(1, thread_name_prefix="started_early_lane")
        self._own: list[ThreadPoolExecutor] = []
        # name -> (seconds from the session's start to the run's end, seconds it ran): the
        # terminal summary shows them, so the suite's long poles are visible
        self.times: dict[str, tuple[float, float]] = {}
        self._started = time.perf_counter()

    def start(self, start: Start, serial: bool) -> None:
        if start in _futures:
            return
        if serial:
            pool = self._lane
        else:
            pool = ThreadPoolExecutor(1, thread_name_prefix=start.__name__)
            self._own.append(pool)
        _futures[start] = _launch(start, self._tmp_path_factory, pool, self._timed(start.__name__))

    def close(self) -> None:
        for pool in (self._lane, *self._own):
            pool.shutdown(wait=True, cancel_futures=True)
        _futures.clear()

    def _timed(self, name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
        def wrap(finish: Callable[[], T]) -> Callable[[], T]:
            def timed() -> T:
                began = time.perf_counter()
                try:
                    return finish()
                finally:
                    ended = time.perf_counter()
                    self.times[name] = (ended - self._started, ended - began)

            return timed

        return wrap


def _launch(
    start: Start, tmp_path_factory: pytest.TempPathFactory, pool: ThreadPoolExecutor, timed: Callable[[Callable[[], Any]], Callable[[], Any]]
) -> Future:
    """``start`` now (a skip or a failure is kept for the test), what it returns on ``pool``."""
    try:
        finish = start(tmp_path_factory)
    except BaseException as error:  # a skip too (no scheduler here): the test raises it
        failed: Future = Future()
        failed.set_exception(error)
        return failed
    return pool.submit(timed(finish))


def started(start: Callable[[pytest.TempPathFactory], Callable[[], T]], tmp_path_factory: pytest.TempPathFactory) -> Future[T]:
    """The result of ``start``'s runs: those the session started, or, where it did not (a test
    run alone, a pytest-xdist worker), the same runs done now."""
    if start in _futures:
        return _futures[start]
    done: Future[T] = Future()
    try:
        done.set_result(start(tmp_path_factory)())
    except BaseException as error:
        done.set_exception(error)
    return done


def pooled(jobs: dict[str, Callable[[], T]], workers: int = 2) -> dict[str, Future[T]]:
    """``jobs`` run ``workers`` at a time; each one's finished future (its result or its error),
    so each test reads its own run."""
    with ThreadPoolExecutor(workers) as pool:
        return {name: pool.submit(job) for name, job in jobs.items()}


def in_own_dir(body: Callable[[Path], T]) -> Callable[[pytest.TempPathFactory], Callable[[], T]]:
    """A start function for ``started`` that only prepares: ``body`` runs later, in a fresh dir."""

    def start(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], T]:
        path = tmp_path_factory.mktemp(body.__name__)
        return lambda: body(path)

    start.__name__ = start.__qualname__ = body.__name__
    return start
