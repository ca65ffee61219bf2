"""What a run shows while it trains: Lightning's tqdm bar in a terminal, one short line per epoch
anywhere else (a Slurm log, CI, ``> run.log``), where a bar rewriting itself at every step fills
the file with carriage-return updates; and the same choice for the work between epochs."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar
from rich.progress import Progress, TimeElapsedColumn

from src.config.errors import UserInputError

MODES = ("auto", "bar", "lines", "rich")


class LinePerEpochProgressBar(ProgressBar):
    """One line per training epoch: its number (from 0, as in the checkpoint names), steps, seconds (validation included) and the
    bar's metrics (the losses and what the module shows in the bar), printed once the epoch's
    metrics are all logged."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._started = 0.0
        self._steps = 0
        self._finished: tuple[int, int, float] | None = None  # epoch, steps, seconds
        self._printed_epoch: int | None = None  # printed early by print_epoch_now

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._print_finished_epoch(trainer, pl_module)
        self._started, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int) -> None:
        self._steps += 1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the module logs its epoch's train metrics after this hook: the line waits for them
        if self._printed_epoch != trainer.current_epoch:
            self._finished = (trainer.current_epoch, self._steps, time.perf_counter() - self._started)

    def print_epoch_now(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The current epoch's line at once, for work that runs at the epoch's end and prints
        lines of its own (the reduction's round), once the module has logged its train metrics."""
        self._finished = (trainer.current_epoch, self._steps, time.perf_counter() - self._started)
        self._print_finished_epoch(trainer, pl_module)
        self._printed_epoch = trainer.current_epoch

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._print_finished_epoch(trainer, pl_module)

    def _print_finished_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._finished is None or not self._enabled:
            return
        epoch, steps, seconds = self._finished
        self._finished = None
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items()))
        # counted from 0 as in Lightning's bar and the checkpoint names: `epoch 49/149` is epoch_049.ckpt
        last = trainer.max_epochs - 1 if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        print(f"epoch {epoch}/{last}: {steps} steps, {seconds:.1f} s {shown}".rstrip(), flush=True)


def print_epoch_line_now(trainer: L.Trainer, pl_module: L.LightningModule, log_train_metrics: Callable[[], None]) -> None:
    """Before epoch-end work that prints lines of its own: the train metrics logged
    (``log_train_metrics``, which the module would call after the callbacks) and the epoch's
    line printed, so the work's lines follow the epoch they belong to. Every rank logs and reads
    the bar's metrics (under DDP both sync across the processes: a rank alone would wait
    forever); rank 0 prints."""
    log_train_metrics()
    trainer.progress_bar_metrics  # noqa: B018 - computed (and synced) on every rank, cached for the line
    bar = trainer.progress_bar_callback
    if isinstance(bar, LinePerEpochProgressBar) and bar.is_enabled:
        bar.print_epoch_now(trainer, pl_module)


def progress_bar(mode: str = "auto", refresh_rate: int = 1) -> ProgressBar:
    """``auto``: the tqdm bar when stdout is a terminal, else a line per epoch; ``bar`` (tqdm),
    ``lines`` or ``rich`` (Lightning's rich bar, which redraws at every step) always."""
    if mode not in MODES:
        raise UserInputError(f"callbacks.progress_bar.mode={mode!r} must be one of {', '.join(MODES)}.")
    if mode == "rich":
        return RichProgressBar(refresh_rate=refresh_rate)
    if mode == "bar" or (mode == "auto" and sys.stdout.isatty()):
        return TQDMProgressBar(refresh_rate=refresh_rate)
    return LinePerEpochProgressBar()


class WorkProgress:
    """Progress through ``total`` items of work between epochs (a reduction round's relevance
    pass and fill): rich's bar in a terminal, else a log line at every tenth of the way, so a
    redirected run shows that thousands of images are being worked on. ``shown=False`` (the
    other DDP ranks) says nothing."""

    def __init__(self, description: str, total: int, shown: bool = True, logger: logging.Logger | None = None) -> None:
        self.description, self.total, self.done = description, max(total, 1), 0
        self._log = logger or logging.getLogger(__name__)
        self._started = time.perf_counter()
        self._tenths = 0
        self._bar: Progress | None = None
        if shown and sys.stdout.isatty():
            self._bar = Progress(*Progress.get_default_columns(), TimeElapsedColumn(), transient=True)
            self._task = self._bar.add_task(description, total=self.total)
            self._bar.start()
        self._shown = shown

    def advance(self, items: int) -> None:
        self.done += items
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self._shown:
            tenths = min(10, self.done * 10 // self.total)
            if tenths > self._tenths:
                self._tenths = tenths
                seconds = time.perf_counter() - self._started
                self._log.info("%s: %d%% (%d of %d images, %.1f s)", self.description, 10 * tenths, self.done, self.total, seconds)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
