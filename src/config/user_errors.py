"""Turning a user's mistake into one clear line and exit code 2 instead of a traceback."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from src.config.errors import UserInputError

log = logging.getLogger(__name__)
T = TypeVar("T")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def user_error_in(exc: BaseException) -> UserInputError | None:
    """The UserInputError behind ``exc`` (Hydra's instantiate wraps errors in its own)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserInputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _log_to_files(error: UserInputError) -> None:
    """The error into the run's log file, but not onto the console: it is printed there once,
    as ``error: ...``, by the caller."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (error,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


# what every start writes into its run dir before training: Hydra's record, the log, run.json and
# the loggers' folders (nothing logged yet)
_START_FILES = (".hydra", ".log", "run.json", "csv", "wandb", "tensorboard")


def _remove_empty_run_dir() -> bool:
    """Remove the run dir Hydra made for a refused command when it holds only what every start
    writes (never a dir the command named with hydra.run.dir, never inside a step of several
    processes, which share the dir). Returns whether it was removed."""
    if not HydraConfig.initialized() or "SLURM_STEP_ID" in os.environ or "LOCAL_RANK" in os.environ:
        return False
    hydra = HydraConfig.get()
    if any(o.lstrip("+").startswith("hydra.run.dir=") for o in hydra.overrides.hydra):
        return False
    run_dir = Path(hydra.runtime.output_dir)
    if not run_dir.is_dir() or any(not entry.name.startswith(_START_FILES) and not entry.name.endswith(_START_FILES) for entry in run_dir.iterdir()):
        return False
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == run_dir]:
        root.removeHandler(handler)
        handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def exit_on_user_error(fn: Callable[..., T]) -> Callable[..., T]:
    """In a multirun the error is raised instead, so Hydra records that job as failed and runs
    the others (an exit would end the whole sweep)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = user_error_in(exc)
            if error is None or in_multirun():
                raise
            if not _remove_empty_run_dir():
                _log_to_files(error)
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper
