"""The steps after a test pass, written once for both jobs (training and evaluation): every test
split a data set offers, the early-exit report, the shifted test sets, and ``metrics.json``."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from src.data.contract import ExperimentData
from src.early_exit.evaluation_step import early_exit_evaluation
from src.models.base import ConfiguredModule
from src.models.early_exit import EarlyExitClassifier
from src.robustness.evaluate import is_per_shift, robustness_metrics
from src.storage.results import print_metrics, write_json_atomic

log = logging.getLogger(__name__)


def split_test_metrics(trainer: L.Trainer, model: ConfiguredModule, datamodule: ExperimentData, ckpt_path: str | None, prefix: str = "") -> dict[str, float]:
    """``<prefix>test_<split>/<metric>`` for each of ``datamodule.test_splits`` (the shortcut set's
    aligned, reversed and neutral; none: empty), tested from ``ckpt_path`` (None: the weights in
    memory)."""
    metrics: dict[str, float] = {}
    for name in datamodule.test_splits:
        with model.testing_as(f"{prefix}test_{name}"):
            results = trainer.test(model, dataloaders=datamodule.split_dataloader(name), ckpt_path=ckpt_path, verbose=False)
        metrics.update({key: float(value) for result in results for key, value in result.items()})
    return metrics


def after_test(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: ConfiguredModule,
    datamodule: ExperimentData,
    output_dir: Path,
    ckpt_path: str | None,
    tested: bool = True,
    step: int = 0,
) -> dict[str, float]:
    """What follows the test of ``ckpt_path`` (None: the weights in memory): the other test
    splits and the shifted test sets where ``tested``, and an early-exit model's report (rank 0;
    on the validation split too, where it chooses its thresholds)."""
    metrics = split_test_metrics(trainer, model, datamodule, ckpt_path) if tested else {}
    if isinstance(model, EarlyExitClassifier) and trainer.is_global_zero:
        metrics.update(early_exit_evaluation(model, datamodule, output_dir, cfg.early_exit, trainer.loggers, step))
    if tested:
        metrics.update(robustness_metrics(cfg, trainer, model, datamodule, output_dir / "robustness"))
    return metrics


def write_metrics(trainer: L.Trainer, output_dir: Path, metrics: dict[str, float], title: str, columns: tuple[str, str] = ("value", "final round")) -> None:
    """``metrics.json`` and the printed table (per-shift numbers left out; ``columns``: its
    headers, src/storage/results.py), from rank 0 only."""
    if trainer.is_global_zero:
        write_json_atomic(output_dir / "metrics.json", metrics)
        log.info("metrics written to %s", output_dir / "metrics.json")
        print_metrics({k: v for k, v in metrics.items() if not is_per_shift(k)}, title=title, columns=columns)
