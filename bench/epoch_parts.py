"""Where each epoch's seconds go, in the plain loop and in ``src.train``, measured inside the runs
that give the overhead ratio. Parts are exclusive (a part nested in another, such as the net's
forward pass inside a training step, counts once, for itself); what no part claims is the loop.

The plain loop calls the stopwatch itself; in ``src.train`` the ``EpochParts`` callback attaches
it to the module and the loggers, and ``PartsProfiler`` (Lightning's profiler interface) reads
data fetches, callbacks by name, the module's epoch-end hooks and the steps. Backward passes and
Adam updates are timed at torch's own entry points, the same way in both.
"""

from __future__ import annotations

import importlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.profilers import Profiler
from torch import nn

# each part and whose it is in src.train (the plain loop has model work, loss, data and its loop)
PARTS = {
    "model_work": "the same in both: the net's forward and backward passes, Adam's update",
    "loss": "the same loss function in both",
    "data": "ours (dataset items as dicts) and Lightning's fetcher; the plain loop: a TensorDataset",
    "metrics": "ours: the loss's mean and one class-count state (torchmetrics Metrics), updated every step, computed at each epoch's end",
    "step_code": "ours: the training and validation steps around the net (normalisation, probabilities)",
    "logging": "Lightning's self.log bookkeeping (at each epoch's end) and the CSV logger (our default)",
    "progress_bar": "Lightning's tqdm bar in a terminal, one line per epoch otherwise (the bench: otherwise)",
    "checkpoints": "Lightning's ModelCheckpoint (best weights, last.ckpt, every epoch): the state and its CPU copy; ours writes it in the background",
    "other_callbacks": "ours (elapsed time, random state, finite-loss guard), the model summary, this bench's clock",
    "loop": "what no part claims: Lightning's loops (the plain loop: its own Python loop)",
}
_END = object()
_ADAM = importlib.import_module("torch.optim.adam")  # the module (torch.optim.adam is the function's name too)


class Stopwatch:
    """Seconds per part, per epoch; ``epoch_start`` closes the previous epoch."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._epoch_start: float | None = None
        self._current: defaultdict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._mark = 0.0

    def epoch_start(self) -> None:
        now = time.perf_counter()
        if self._epoch_start is not None:
            self.epochs.append({"epoch": now - self._epoch_start, **self._current})
        self._epoch_start, self._current = now, defaultdict(float)

    def enter(self, part: str) -> None:
        now = time.perf_counter()
        if self._stack:  # the enclosing part pauses
            self._current[self._stack[-1]] += now - self._mark
        self._stack.append(part)
        self._mark = now

    def exit(self) -> None:
        now = time.perf_counter()
        self._current[self._stack.pop()] += now - self._mark
        self._mark = now

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        self.enter(name)
        try:
            yield
        finally:
            self.exit()

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed_fn(*args: Any, **kwargs: Any) -> Any:
            with self.part(name):
                return fn(*args, **kwargs)

        return timed_fn

    def iterate(self, name: str, iterable: Iterable[Any]) -> Iterator[Any]:
        """The items of ``iterable``, the time to get each counted to ``name``."""
        items = iter(iterable)
        while True:
            with self.part(name):
                item = next(items, _END)
            if item is _END:
                return
            yield item

    def watch_forward(self, net: nn.Module) -> None:
        net.register_forward_pre_hook(lambda *_: self.enter("model_work"))
        net.register_forward_hook(lambda *_: self.exit())

    @contextmanager
    def model_work(self) -> Iterator[None]:
        """Backward passes and Adam updates timed wherever they run, for the duration."""
        backward, adam = torch.autograd.backward, _ADAM.adam
        torch.autograd.backward = self.timed("model_work", backward)
        _ADAM.adam = self.timed("model_work", adam)
        try:
            yield
        finally:
            torch.autograd.backward, _ADAM.adam = backward, adam


def mean_parts(watches: list[Stopwatch]) -> dict[str, float]:
    """Mean seconds per epoch of each part over every run's epochs after its first (which warms
    up), with ``loop`` the time no part claims and ``epoch`` the whole."""
    epochs = [epoch for watch in watches for epoch in watch.epochs[1:]]
    means = {part: sum(e.get(part, 0.0) for e in epochs) / len(epochs) for part in PARTS if part != "loop"}
    whole = sum(e["epoch"] for e in epochs) / len(epochs)
    return {**means, "loop": whole - sum(means.values()), "epoch": whole}


# the stopwatch of the src.train run in progress (one process, one fit at a time)
WATCH = Stopwatch()


def _part(action: str) -> str | None:
    """The part a Lightning profiler action belongs to, or None (its time stays with its caller)."""
    if action.endswith("_next"):  # "[_TrainingEpochLoop].train_dataloader_next", "[_EvaluationLoop].val_next"
        return "data"
    if action.startswith("[Callback]"):
        name = action.removeprefix("[Callback]")
        return "progress_bar" if "ProgressBar" in name else "checkpoints" if name.startswith("ModelCheckpoint") else "other_callbacks"
    hook = action.rsplit(".", 1)[-1]
    if action.startswith("[LightningModule]") and hook in ("on_train_epoch_end", "on_validation_epoch_end"):
        return "metrics"
    if action.startswith("[Strategy]") and hook in ("training_step", "validation_step"):
        return "step_code"
    return None


class PartsProfiler(Profiler):
    """Lightning's profiler hooks feeding ``WATCH`` (``+trainer.profiler._target_=...``)."""

    def __init__(self) -> None:
        super().__init__()
        self._entered: list[bool] = []

    def start(self, action_name: str) -> None:
        part = _part(action_name)
        self._entered.append(part is not None)
        if part is not None:
            WATCH.enter(part)

    def stop(self, action_name: str) -> None:
        if self._entered.pop():
            WATCH.exit()


class EpochParts(Callback):
    """Marks each training epoch's start and times the net, the loss, metric updates, self.log
    and the loggers."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        WATCH.watch_forward(pl_module.net)
        pl_module.loss_fn = WATCH.timed("loss", pl_module.loss_fn)
        for split in ("train", "val"):
            metrics = getattr(pl_module, f"{split}_metrics")
            metrics.update = WATCH.timed("metrics", metrics.update)
        pl_module.log = WATCH.timed("logging", pl_module.log)  # log_dict calls it per value
        for logger in trainer.loggers:
            logger.log_metrics = WATCH.timed("logging", logger.log_metrics)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        WATCH.epoch_start()
