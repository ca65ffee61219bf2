"""Re-running and resuming a run from its directory alone.

``python -m src.train --rerun <run dir> [overrides]`` runs the recorded overrides of that run again
(in a new run dir). ``python -m src.train ckpt_path=<run dir> [overrides]`` resumes it: the
recorded overrides, its ``checkpoints/last.ckpt``, and the same run dir, so the resumed run
continues the original's files instead of leaving a second half-run beside it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from src.config.errors import UserInputError
from src.runs.writable import check_writable

# the recorded ones would point the re-run at the old run's files
_NOT_REPEATED = ("ckpt_path=", "hydra.run.dir=", "hydra.sweep.dir=")


def recorded_overrides(run_dir: Path) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        raise UserInputError(f"{run_dir} is not a run dir (no .hydra/overrides.yaml); pass the folder that holds a run's checkpoints/ and .hydra/.")
    overrides = yaml.safe_load(path.read_text()) or []
    return [o for o in overrides if not o.lstrip("+~").startswith(_NOT_REPEATED)]


def expand_arguments(argv: list[str]) -> list[str]:
    """``argv`` with ``--rerun <dir>`` and ``ckpt_path=<dir>`` replaced by the run's recorded
    overrides (given overrides come after them and win)."""
    program, args = argv[0], list(argv[1:])
    if "--rerun" in args:
        at = args.index("--rerun")
        if at + 1 >= len(args):
            raise UserInputError("--rerun needs a run dir: python -m src.train --rerun outputs/train/runs/<run>.")
        run_dir = Path(args[at + 1])
        del args[at : at + 2]
        return [program, *recorded_overrides(run_dir), *args]
    for at, arg in enumerate(args):
        if arg.startswith("ckpt_path=") and Path(arg.split("=", 1)[1]).is_dir():
            run_dir = Path(arg.split("=", 1)[1]).resolve()
            last = run_dir / "checkpoints" / "last.ckpt"
            if not last.is_file():
                raise UserInputError(f"{run_dir} has no checkpoints/last.ckpt to resume from; the run ended before its first epoch.")
            rest = args[:at] + args[at + 1 :]
            return [program, *recorded_overrides(run_dir), *rest, f"ckpt_path={_quoted(last)}", f"hydra.run.dir={_quoted(run_dir)}"]
    return [program, *args]


def _quoted(path: Path) -> str:
    """A path as a Hydra override value (spaces, '=' and quotes survive)."""
    text = str(path).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def check_output_folders(argv: list[str]) -> None:
    """Hydra makes the run dir before any of our code runs, and answers an unwritable one with a
    traceback: check the folders named on the command line (and the default) first."""
    folders = {"paths.log_dir": Path(os.environ.get("PROJECT_ROOT", ".")) / "outputs"}
    for arg in argv[1:]:
        key, _, value = arg.lstrip("+").partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir", "paths.log_dir") and value and "$" not in value:
            folders[key] = Path(value.strip("'\""))
    for key, folder in folders.items():
        check_writable(folder, key)


def main_with_run_dirs(main: Callable[[], object]) -> None:
    """Run a Hydra ``main`` after expanding run-dir arguments (console scripts and ``-m``)."""
    try:
        sys.argv = expand_arguments(sys.argv)
        check_output_folders(sys.argv)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    main()
