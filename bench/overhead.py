"""Framework overhead: ``src.train``'s Lightning path against the plain loop of
``reference_loop.py`` on the same net, data, batch size and epochs, per epoch (from one epoch's
start to the next, so start-up and the final test never count)."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from hydra.utils import instantiate

from bench import epoch_clock
from bench.framework import SAME_NET, compose_train, framework_fit
from bench.reference_loop import plain_fit
from bench.timing import interleaved, median

log = logging.getLogger(__name__)

# each data set with the overrides that give the plain loop's setting (membrane: no augmentation,
# which the plain loop does not do; its cost is in the data section)
DATA_SETS = {
    "eliret": ["reduction=none"],
    "membrane": ["data=membrane", "augment=none", "reduction=none", *SAME_NET],
}
# framework variants that switch off one default each: the per-epoch cost they remove is that default's
ABLATIONS = {
    "no_progress_bar": ["callbacks.progress_bar=null", "+trainer.enable_progress_bar=false"],
    "no_checkpoints": ["callbacks.model_checkpoint=null", "callbacks.last_checkpoint=null", "+trainer.enable_checkpointing=false"],
    "bare_lightning": [
        "callbacks=none",
        "logger=none",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_checkpointing=false",
        "+trainer.enable_model_summary=false",
    ],
}
# the variants run per data set (membrane's runs are longer: the two that split the remainder)
ABLATED = {"eliret": tuple(ABLATIONS), "membrane": ("no_checkpoints", "bare_lightning")}


def _intervals(starts: list[float]) -> list[float]:
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


def _plain_arm(overrides: list[str], data_dir: str, epochs: int, sink: list[list[float]]) -> Callable[[], None]:
    with tempfile.TemporaryDirectory() as scratch:
        cfg = compose_train([f"paths.data_dir={data_dir}", *overrides], Path(scratch))
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    train, val = datamodule.splits["train"], datamodule.splits["val"]

    def arm() -> None:
        starts: list[float] = []
        plain_fit((train.images, train.masks), (val.images, val.masks), datamodule.task, epochs, cfg.data.batch_size, clock=starts)
        sink.append(_intervals(starts))

    return arm


def _framework_arm(overrides: list[str], data_dir: str, epochs: int, sink: list[list[float]]) -> Callable[[], None]:
    def arm() -> None:
        epoch_clock.STARTS.clear()
        framework_fit(
            [f"paths.data_dir={data_dir}", *overrides, f"trainer.max_epochs={epochs}", "+callbacks.epoch_clock._target_=bench.epoch_clock.EpochClock"]
        )
        sink.append(_intervals(epoch_clock.STARTS))

    return arm


def measure(data_dir: str, epochs: dict[str, int], repetitions: int, ablations: bool) -> dict[str, dict]:
    """Per data set: seconds per epoch of each arm and ``overhead_ratio`` = framework / plain.
    An epoch's cost is the time from its start to the next epoch's start (training, validation,
    checkpoints, logging), so start-up and the final test never count; each run's figure is the
    median over its epochs after the first, and each reported figure the median over runs."""
    results = {}
    for name, overrides in DATA_SETS.items():
        if name not in epochs:
            continue
        variants = {"framework": overrides}
        if ablations:
            variants.update({k: overrides + ABLATIONS[k] for k in ABLATED[name]})
        sinks: dict[str, list[list[float]]] = {arm: [] for arm in ["plain", *variants]}
        arms: dict[str, Callable[[], None]] = {"plain": _plain_arm(overrides, data_dir, epochs[name], sinks["plain"])}
        for variant, variant_overrides in variants.items():
            arms[variant] = _framework_arm(variant_overrides, data_dir, epochs[name], sinks[variant])
        log.info("overhead on %s: %d arms x %d repetitions of %d epochs", name, len(arms), repetitions, epochs[name])
        interleaved(arms, repetitions)
        per_epoch = {arm: [median(run[1:]) for run in runs] for arm, runs in sinks.items()}
        ratios = [f / p for f, p in zip(per_epoch["framework"], per_epoch["plain"], strict=True)]
        results[name] = {
            "overhead_ratio": median(ratios),
            "overhead_ratios": ratios,
            "seconds_per_epoch": {arm: median(values) for arm, values in per_epoch.items()},
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
