"""What a run needs to be re-run: its command line, the code's git commit (and whether the tree
had uncommitted changes) and the versions of the packages that shape its numbers."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "salseg",
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "segmentation-models-pytorch",
    "captum",
    "monai",
    "numpy",
    "scikit-image",
)
CHECKOUT = Path(__file__).resolve().parents[2]


def provenance() -> dict[str, Any]:
    return {
        "command": shlex.join([Path(sys.executable).name, *_command()]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git_state(CHECKOUT),
        "versions": {name: _version(name) for name in PACKAGES},
    }


def _command() -> list[str]:
    # `python -m src.train a=b` leaves sys.argv[0] as the module's file path
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return ["-m", spec.name, *sys.argv[1:]] if spec is not None and spec.name else sys.argv


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit and dirty flag of the checkout the code runs from; None for an installed package."""
    if not (folder / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
