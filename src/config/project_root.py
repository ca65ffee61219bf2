"""Where a run's ``outputs/``, ``data/`` and ``.cache/`` live (``paths.root_dir``)."""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """``$PROJECT_ROOT`` where set; else this checkout, so ``python -m src.train`` writes into it
    from any working directory; else (an installed package, no checkout around it) the working
    directory. Read, never written: importing or composing changes no environment variable."""
    if os.environ.get("PROJECT_ROOT"):
        return Path(os.environ["PROJECT_ROOT"])
    return _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
