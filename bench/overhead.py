"""Framework overhead: seconds per epoch of ``src.train``'s Lightning path against the plain loop,
same net, data, loss, optimizer, batch size and epochs. Per-epoch cost is the difference of a
short and a long run divided by the extra epochs, so start-up and the final evaluation cancel;
repetitions are interleaved and the median kept, so a noisy machine hits both sides alike."""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.compose import compose_run
from bench.plain_loop import fit_plain
from src.builders import build_datamodule
from src.models.unet import UNet
from src.train import train

NET = ("model=unet", "model.net.depth=3", "model.net.base_width=16", "reduction=none", "augment=none", "torch_threads=2")
# variants of the framework run: what each default costs (each adds one switch to the previous)
ABLATIONS = {
    "defaults": (),
    "no progress bar": ("callbacks.progress_bar=null",),
    "no logger": ("callbacks.progress_bar=null", "logger=none"),
    "no checkpoints": ("callbacks.progress_bar=null", "logger=none", "callbacks.model_checkpoint=null", "callbacks.last_checkpoint=null"),
}


def _quiet() -> None:
    for name in ("lightning", "lightning.pytorch", "src"):
        logging.getLogger(name).setLevel(logging.ERROR)


def framework_seconds(data: tuple[str, ...], extra: tuple[str, ...], epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run([*NET, *data, *extra, f"trainer.max_epochs={epochs}", "test=false"], Path(tmp))
        started = time.perf_counter()
        train(cfg)
        return time.perf_counter() - started


def plain_seconds(data: tuple[str, ...], epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_run([*NET, *data], Path(tmp))
        torch.set_num_threads(2)
        datamodule = build_datamodule(cfg)
        datamodule.prepare_data()
        datamodule.setup("fit")
        torch.manual_seed(cfg.seed)
        net = UNet(datamodule.in_channels, datamodule.out_channels, depth=3, base_width=16)
        mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (datamodule.mean, datamodule.std))
        started = time.perf_counter()
        fit_plain(net, mean, std, datamodule.splits["train"], datamodule.splits["val"], datamodule.task, epochs, cfg.data.batch_size, cfg.model.optimizer.lr)
        return time.perf_counter() - started


def per_epoch(runners: dict[str, Callable[[int], float]], short: int, long: int, repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of (T(long) - T(short)) / (long - short) per runner, the runners
    interleaved within each repetition."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            samples[name].append((run(long) - run(short)) / (long - short))
    return {name: statistics.median(values) for name, values in samples.items()}


def startup_seconds(data: tuple[str, ...]) -> dict[str, float]:
    """Wall seconds of fresh processes: ``import torch`` alone, ``import src.train`` (Lightning,
    Hydra, torchmetrics, smp...), and a whole one-epoch ``python -m src.train``."""
    commands = {
        "import torch": [sys.executable, "-c", "import torch"],
        "import src.train": [sys.executable, "-c", "import src.train"],
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        commands["python -m src.train, 1 epoch"] = [
            sys.executable,
            "-m",
            "src.train",
            *NET,
            *data,
            "trainer.max_epochs=1",
            "test=false",
            f"hydra.run.dir={tmp}/run",
        ]
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            out[name] = time.perf_counter() - started
    return out


def measure(data: tuple[str, ...], short: int, long: int, repeats: int, ablations: bool) -> dict[str, object]:
    _quiet()
    variants = ABLATIONS if ablations else {"defaults": ()}
    runners: dict[str, Callable[[int], float]] = {"plain loop": lambda n: plain_seconds(data, n)}
    runners.update({f"framework ({name})": (lambda n, extra=extra: framework_seconds(data, extra, n)) for name, extra in variants.items()})
    seconds = per_epoch(runners, short, long, repeats)
    plain = seconds["plain loop"]
    return {
        "epochs": [short, long],
        "repeats": repeats,
        "seconds_per_epoch": seconds,
        "overhead_ratio": seconds["framework (defaults)"] / plain,
        "ratios": {name: value / plain for name, value in seconds.items() if name != "plain loop"},
        "startup_seconds": startup_seconds(data),
    }
