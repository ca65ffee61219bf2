"""Re-running and resuming a run from its directory alone.

``python -m src.train --rerun <run dir> [overrides]`` runs the recorded overrides of that run again
(in a new run dir). ``python -m src.train ckpt_path=<run dir> [overrides]`` resumes it: the
recorded overrides, its ``checkpoints/last.ckpt``, and the same run dir, so the resumed run
continues the original's files instead of leaving a second half-run beside it.
``python -m src.train ckpt_path=last [overrides]`` resumes the newest unfinished run of the same
overrides the same way, or starts one when there is none: one command for a job's first start and
its restarts (in an srun step the run dir is the step's own, so ``last`` is that dir's).
``python -m src.train -m ... ckpt_path=last`` does the same for a sweep: the newest unfinished
sweep of the same overrides continues in its own dir. Settings of how a job runs (threads,
progress bar, logger, launcher) never decide which run or sweep is the same.
"""

from __future__ import annotations

import fcntl
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from src.config import slurm
from src.config.compose import hydra_mode
from src.config.errors import UserInputError
from src.config.help import refuse_misspelt_keys
from src.config.project_root import project_root
from src.storage.writable import check_writable

# the recorded ones would point the re-run at the old run's files
_NOT_REPEATED = ("ckpt_path=", "hydra.run.dir=", "hydra.sweep.dir=")
# how a job runs, not what it computes: they never decide which run or sweep `ckpt_path=last` continues
EXECUTION_ONLY = ("torch_threads", "callbacks.progress_bar", "logger", "hydra.launcher", "hydra/launcher", "hydra.verbose", "hydra.mode")
# written by src/sweeps/summary.py when a multirun's last job has ended
SWEEP_FINISHED = "sweep_finished.json"
# held (flock) by the process that runs a multirun, for its whole length
SWEEP_LOCK = ".sweep.lock"


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
    if "ckpt_path=last" in args and _fresh_sweep_dir(args):
        found = unfinished_sweeps(_log_dir(args), "train", [a for a in args if a not in ("ckpt_path=last", "-m", "--multirun")])
        if found:
            if sweep_running(found[0]):
                raise UserInputError(f"the sweep {found[0]} is still running (another process holds it); wait for it, or stop it before continuing it.")
            _tell_resuming(found, "sweep")
            args = [*args, f"hydra.sweep.dir={_quoted(found[0])}"]  # each job resumes its own dir (src/jobs/training.py)
        return [program, *args]
    if "ckpt_path=last" in args and _fresh_run_dir(args):
        found = unfinished_runs(_log_dir(args), "train", [a for a in args if a != "ckpt_path=last"])
        if not found:
            return [program, *args]
        _tell_resuming(found, "run")
        args = [f"ckpt_path={found[0]}" if a == "ckpt_path=last" else a for a in args]
    for at, arg in enumerate(args):
        if arg.startswith("ckpt_path=") and Path(arg.split("=", 1)[1]).is_dir():
            run_dir = Path(arg.split("=", 1)[1]).resolve()
            last = run_dir / "checkpoints" / "last.ckpt"
            if not last.is_file():
                raise UserInputError(f"{run_dir} has no checkpoints/last.ckpt to resume from; the run ended before its first epoch.")
            recorded = recorded_overrides(run_dir)
            rest = [a for a in args[:at] + args[at + 1 :] if a not in recorded]  # a repeat would be recorded twice
            return [program, *recorded, *rest, f"ckpt_path={_quoted(last)}", f"hydra.run.dir={_quoted(run_dir)}"]
    return [program, *args]


def what_it_computes(overrides: list[str]) -> list[str]:
    """``overrides`` less the run-dir keys and the execution-only settings, in the order written
    (a sweep numbers its jobs in that order): two commands with the same list train the same
    models, job for job."""
    kept = []
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if not override.lstrip("+~").startswith(_NOT_REPEATED) and not any(key == k or key.startswith(f"{k}.") for k in EXECUTION_ONLY):
            kept.append(override)
    return kept


def unfinished_runs(log_dir: Path, config_name: str, overrides: list[str]) -> list[Path]:
    """Run dirs under ``log_dir/<task>/runs/`` of the entry point ``config_name`` whose recorded
    overrides compute what ``overrides`` compute (``what_it_computes``: in any order, run-dir keys
    and execution-only settings left out), with a ``last.ckpt`` and no ``metrics.json`` (they
    stopped before the end), newest checkpoint first."""
    wanted = sorted(what_it_computes(overrides))  # one run: the order of its overrides changes nothing
    found = []
    for last in log_dir.glob("*/runs/*/checkpoints/last.ckpt"):
        run = last.parent.parent
        if (run / "metrics.json").exists() or not (run / ".hydra" / "overrides.yaml").is_file():
            continue
        if sorted(what_it_computes(recorded_overrides(run))) == wanted and _hydra_setting(run / ".hydra" / "hydra.yaml", "job", "config_name") == config_name:
            found.append((last.stat().st_mtime, run))
    return [run for _, run in sorted(found, reverse=True)]


def unfinished_sweeps(log_dir: Path, config_name: str, overrides: list[str]) -> list[Path]:
    """Sweep dirs under ``log_dir/<task>/multiruns/`` (and the fixed dirs some presets sweep into)
    of ``config_name`` whose overrides (task and Hydra's, in the order written: the jobs' numbers
    follow it) compute what ``overrides`` compute and that did not end (no ``sweep_finished.json``,
    or a job that failed), newest first. A sweep still running is refused: two sweeps would train
    the same job dirs."""
    wanted = what_it_computes(overrides)
    found = []
    # where sweeps live: <task>/multiruns/<time>, and a preset's fixed <task>/<name>; not a walk
    # through every run's files
    for recorded in [*log_dir.glob("*/multiruns/*/multirun.yaml"), *log_dir.glob("*/*/multirun.yaml")]:
        sweep = recorded.parent
        if (sweep / SWEEP_FINISHED).exists() and not _has_failed_job(sweep):
            continue
        given = [*(_hydra_setting(recorded, "overrides", "task") or []), *(_hydra_setting(recorded, "overrides", "hydra") or [])]
        if what_it_computes(given) == wanted and _hydra_setting(recorded, "job", "config_name") == config_name:
            found.append((recorded.stat().st_mtime, sweep))
    return [sweep for _, sweep in sorted(found, reverse=True)]


def _has_failed_job(sweep: Path) -> bool:
    return any(json.loads(record.read_text()).get("status") == "failed" for record in sweep.glob("*/job.json"))


def sweep_running(sweep: Path) -> bool:
    """Whether a process holds ``sweep``'s lock (src/sweeps/summary.py takes it for the sweep's
    length; a killed sweep's lock is released with its process)."""
    lock = sweep / SWEEP_LOCK
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _hydra_setting(path: Path, group: str, key: str):
    """``hydra.<group>.<key>`` of a run's hydra.yaml or a sweep's multirun.yaml (None if absent)."""
    if not path.is_file():
        return None
    return ((yaml.safe_load(path.read_text()) or {}).get("hydra", {}).get(group, {}) or {}).get(key)


def _fresh_sweep_dir(args: list[str]) -> bool:
    """Whether this command is a multirun (``-m``, or a preset that sets ``hydra.mode``: the study
    presets, an Optuna search) whose sweep dir is not given on the command line."""
    if any(a.lstrip("+").startswith("hydra.sweep.dir=") for a in args):
        return False
    return any(a in ("-m", "--multirun") for a in args) or hydra_mode("train", args) == "MULTIRUN"


def _fresh_run_dir(args: list[str]) -> bool:
    """Whether this command would make a new timestamped run dir (not a sweep, not a given dir,
    not an srun step's own)."""
    pinned = any(a.lstrip("+").startswith(("hydra.run.dir=", "-m", "--multirun")) for a in args)
    return not pinned and slurm.step_stamp() is None


def _log_dir(args: list[str]) -> Path:
    """Where runs go: ``paths.log_dir`` (or ``paths.root_dir``/outputs) as given, else the default."""
    values = dict(a.lstrip("+").split("=", 1) for a in args if "=" in a)
    if "paths.log_dir" in values:
        return Path(values["paths.log_dir"].strip("'\""))
    root = values.get("paths.root_dir", str(project_root()))
    return Path(root.strip("'\"")) / "outputs"


def _tell_resuming(found: list[Path], kind: str) -> None:
    newest = found[0]
    if kind == "run":
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((newest / "checkpoints" / "last.ckpt").stat().st_mtime))
        print(f"ckpt_path=last: resuming {newest} (last.ckpt of {stamp})", file=sys.stderr)
    else:
        print(f"ckpt_path=last: continuing the sweep {newest}: finished jobs are read, a killed job resumes, the rest start", file=sys.stderr)
    if len(found) > 1:
        others = ", ".join(str(p) for p in found[1:6])
        print(f"ckpt_path=last: {len(found) - 1} older unfinished {kind}(s) of the same overrides left as they are: {others}", file=sys.stderr)


def _quoted(path: Path) -> str:
    """A path as a Hydra override value (spaces, '=' and quotes survive)."""
    text = str(path).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def check_output_folders(argv: list[str]) -> None:
    """Hydra makes the run dir before any of our code runs, and answers an unwritable one with a
    traceback: check the folders named on the command line (and the default) first."""
    folders = {"paths.log_dir": project_root() / "outputs"}
    for arg in argv[1:]:
        key, _, value = arg.lstrip("+").partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir", "paths.log_dir") and value and "$" not in value:
            folders[key] = Path(value.strip("'\""))
    for key, folder in folders.items():
        check_writable(folder, key)


def main_with_run_dirs(main: Callable[[], object], config_name: str = "train") -> None:
    """Run a Hydra ``main`` after expanding run-dir arguments (console scripts and ``-m``) and
    refusing a misspelt key in one line."""
    try:
        sys.argv = expand_arguments(sys.argv)
        check_output_folders(sys.argv)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    refuse_misspelt_keys(config_name)
    main()
