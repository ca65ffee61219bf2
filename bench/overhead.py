"""Framework overhead: ``src.train``'s Lightning path against the plain loop of
``reference_loop.py`` on the same net, data, batch size and epochs, per epoch (from one epoch's
start to the next, so start-up and the final test never count)."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable

from bench import epoch_parts
from bench.epoch_parts import PARTS, Stopwatch, mean_parts
from bench.framework import SAME_NET, framework_fit, training_data
from bench.reference_loop import plain_fit
from bench.timing import interleaved, median

log = logging.getLogger(__name__)

# each data set with the overrides that give the plain loop's setting (membrane: no augmentation,
# which the plain loop does not do; its cost is in the data section)
DATA_SETS = {
    "eliret": ["reduction=none"],
    "membrane": ["data=membrane", "augment=none", "reduction=none", *SAME_NET],
}
# src.train with its defaults, plus the stopwatch: a callback and Lightning's profiler interface
TIMED = ["+callbacks.epoch_parts._target_=bench.epoch_parts.EpochParts", "+trainer.profiler._target_=bench.epoch_parts.PartsProfiler"]


def _plain_arm(overrides: list[str], data_dir: str, epochs: int, sink: list[Stopwatch]) -> Callable[[], None]:
    cfg, datamodule = training_data([f"paths.data_dir={data_dir}", *overrides])
    train, val = datamodule.splits["train"], datamodule.splits["val"]

    def arm() -> None:
        watch = Stopwatch()
        with watch.model_work():
            plain_fit((train.images, train.masks), (val.images, val.masks), datamodule.task, epochs, cfg.data.batch_size, watch=watch)
        sink.append(watch)

    return arm


def _framework_arm(overrides: list[str], data_dir: str, epochs: int, sink: list[Stopwatch]) -> Callable[[], None]:
    def arm() -> None:
        watch = epoch_parts.WATCH = Stopwatch()
        with watch.model_work():
            framework_fit([f"paths.data_dir={data_dir}", *overrides, f"trainer.max_epochs={epochs}", *TIMED])
        sink.append(watch)

    return arm


def measure(data_dir: str, epochs: dict[str, int], repetitions: int) -> dict[str, dict]:
    """Per data set: seconds per epoch of each arm, ``overhead_ratio`` = framework / plain, and
    where each arm's epoch goes (``parts``, ``bench.epoch_parts``), with
    ``outside_model_work_ratio``: the ratio if both arms' model work took the plain loop's time
    (the framework's own parts, free of the noise in the work both share). An epoch's cost is the time
    from its start to the next epoch's start (training, validation, checkpoints, logging), so
    start-up and the final test never count; each run's figure is the median over its epochs
    after the first, and each reported figure the median over runs."""
    results = {}
    for name, overrides in DATA_SETS.items():
        if name not in epochs:
            continue
        sinks: dict[str, list[Stopwatch]] = {"plain": [], "framework": []}
        arms = {
            "plain": _plain_arm(overrides, data_dir, epochs[name], sinks["plain"]),
            "framework": _framework_arm(overrides, data_dir, epochs[name], sinks["framework"]),
        }
        log.info("overhead on %s: %d repetitions of %d epochs", name, repetitions, epochs[name])
        interleaved(arms, repetitions)
        per_epoch = {arm: [median([e["epoch"] for e in w.epochs[1:]]) for w in watches] for arm, watches in sinks.items()}
        ratios = [f / p for f, p in zip(per_epoch["framework"], per_epoch["plain"], strict=True)]
        parts = {arm: mean_parts(watches) for arm, watches in sinks.items()}
        # what src.train adds outside the work both arms share: robust to the noise in that work
        extra = sum(parts["framework"][k] - parts["plain"][k] for k in PARTS if k != "model_work")
        results[name] = {
            "overhead_ratio": median(ratios),
            "overhead_ratios": ratios,
            "seconds_per_epoch": {arm: median(values) for arm, values in per_epoch.items()},
            "parts": parts,
            "outside_model_work_ratio": (parts["plain"]["epoch"] + extra) / parts["plain"]["epoch"],
            "epochs": epochs[name],
            "repetitions": repetitions,
        }
    return results


def startup(data_dir: str, repetitions: int) -> dict[str, float]:
    """Seconds from launching the process to the end of a one-epoch eliret run, for the CLI
    (``python -m src.train``, its final test off) and the plain loop, and the import alone."""
    with tempfile.TemporaryDirectory() as scratch:
        train_cli = [
            sys.executable, "-m", "src.train", "reduction=none", "trainer.max_epochs=1", "test=false",
            f"paths.data_dir={data_dir}", f"paths.log_dir={scratch}", f"hydra.run.dir={scratch}/run",
        ]  # fmt: skip
        plain_cli = [sys.executable, "-m", "bench.reference_loop", "--data-dir", data_dir, "--epochs", "1"]
        imports = [sys.executable, "-c", "import src.train"]
        arms = {
            name: (lambda cmd=cmd: subprocess.run(cmd, check=True, capture_output=True))
            for name, cmd in (("framework", train_cli), ("plain", plain_cli), ("import", imports))
        }
        times = interleaved(arms, repetitions)
    return {f"{name}_one_epoch_s" if name != "import" else "import_src_train_s": median(v) for name, v in times.items()}
