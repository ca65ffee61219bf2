"""Writing a generated data set into its folder atomically, with the spec that made it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_generated(data_dir: Path, spec_file: str, spec: dict[str, Any], write_files: Callable[[Path], None]) -> None:
    """``write_files(tmp)`` into a sibling temp dir, then renamed to ``data_dir``, so an
    interrupted run never leaves a half-written set behind. ``spec`` goes to ``spec_file``; a
    folder that another process filled with the same spec meanwhile is kept."""
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.", dir=data_dir.parent))
    try:
        write_files(tmp)
        (tmp / spec_file).write_text(json.dumps(spec, indent=2) + "\n")
        try:
            os.rename(tmp, data_dir)  # replaces an empty data_dir; fails on a non-empty one
        except OSError:
            if read_spec(data_dir, spec_file) != spec:  # not another process that generated the same set
                raise
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_spec(data_dir: Path, spec_file: str) -> dict[str, Any] | None:
    """The spec stored beside a generated set, or None (no spec file: not generated here)."""
    path = Path(data_dir) / spec_file
    return json.loads(path.read_text()) if path.exists() else None
