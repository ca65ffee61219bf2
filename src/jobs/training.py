"""One training job: fit, then validate and test the *best* checkpoint (and, with reduction, the
best of the final round), write ``run.json`` and ``metrics.json`` into the run dir. ``src.train``
imports this (torch, Lightning) only once the config has been checked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from src.callbacks.requeue import Requeued
from src.callbacks.rounds import TrainingInRounds
from src.config.compose import CONF
from src.config.errors import UserInputError
from src.config.user_errors import in_multirun
from src.data.contract import ExperimentData
from src.jobs.after_test import after_test, split_test_metrics, write_metrics
from src.jobs.builders import build_callbacks, build_datamodule, build_model, build_trainer, set_torch_threads
from src.loggers.build import build_loggers, finish_loggers, log_config
from src.loggers.csv_logger import ResumableCSVLogger
from src.loggers.noise import quiet_checkpoint_loads, silence_lightning_noise
from src.models.base import ConfiguredModule
from src.reduction.final_round import FinalRoundCheckpoint
from src.robustness.evaluate import robustness_metrics, suite
from src.runs.threads import ThreadChoice
from src.storage.checkpoints import read_checkpoint
from src.storage.provenance import provenance
from src.storage.results import write_json_atomic
from src.storage.writable import check_writable, checkpoint_bytes

log = logging.getLogger(__name__)
FINAL_ROUND_EPOCH = "final_round/epoch"
FINAL_ROUND_ROUND = "final_round/round"


def _as_floats(results: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {k: float(v) for result in results for k, v in result.items()}


def run_training(cfg: DictConfig) -> dict[str, float]:
    """Fit, validate and test the best checkpoint of a checked config (``src.train.train``);
    returns the final metrics."""
    threads = set_torch_threads(cfg)
    silence_lightning_noise()  # before the first line Lightning logs
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    check_writable(output_dir, "paths.output_dir")
    if cfg.get("ckpt_path") == "last" and (output_dir / "metrics.json").is_file() and in_multirun():
        # a continued sweep's finished job, matched by its overrides: its results are read, not
        # retrained (a single run resumed with more epochs goes on training)
        log.info("ckpt_path=last: %s finished before; reading its metrics.json", output_dir)
        return json.loads((output_dir / "metrics.json").read_text())
    ckpt_path, resumed_at = resume_checkpoint(cfg.get("ckpt_path"), output_dir)
    record = run_record(output_dir, ckpt_path, threads)  # written before any training, so a failed run can be re-run too
    if rank_zero_only.rank == 0:  # the other DDP processes run this too, and would record the resume again
        write_json_atomic(output_dir / "run.json", record)
    datamodule = build_datamodule(cfg)
    suite(cfg.get("robustness"), datamodule)  # a misspelt shift fails now, not after the fit
    model = build_model(cfg, datamodule)
    check_writable(output_dir, "paths.output_dir", checkpoint_bytes(sum(p.numel() for p in model.parameters())))
    loggers = build_loggers(cfg.get("logger"))
    if resumed_at and cfg.train:
        continue_logs(loggers, resumed_at)
    log_config(loggers, cfg)
    trainer = build_trainer(cfg, build_callbacks(cfg, segmentation=datamodule.task != "classification"), loggers)
    log.info("callbacks: %s", ", ".join(type(c).__name__ for c in trainer.callbacks))
    log_data_model()
    requeued: Requeued | None = None
    try:
        if cfg.train:
            try:
                trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            except Requeued as stop:
                requeued = stop
                raise
        best = _best_checkpoint(trainer)
        metrics: dict[str, float] = {}
        with quiet_checkpoint_loads():
            if cfg.train or cfg.test:
                # the training logs hold every epoch's validation; the best's again would be a second
                # `val/*` row at the last step, for another model than that step's
                with _unlogged(trainer):
                    metrics.update(_as_floats(trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)))
            if cfg.test:
                metrics.update(_as_floats(trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)))
                metrics.update(after_test(cfg, trainer, model, datamodule, output_dir, best, step=trainer.global_step))
                metrics.update(final_round_metrics(cfg, trainer, model, datamodule, output_dir))
        position = checkpoint_position(trainer, best)
        metrics.update({key: float(value) for key, value in position.items()})  # which model the numbers describe
        if FINAL_ROUND_EPOCH in metrics:
            metrics[FINAL_ROUND_ROUND] = float(round_of(trainer, int(metrics[FINAL_ROUND_EPOCH])) or 0)
        if trainer.is_global_zero:
            write_json_atomic(output_dir / "run.json", {**record, "best_checkpoint": best, **position})
        publish_metrics(trainer.loggers, metrics, position, step=trainer.global_step)
        write_metrics(trainer, output_dir, metrics, title=describe_checkpoint(best, position, output_dir), columns=headline_columns(metrics))
    finally:
        finish_loggers(loggers)
        if requeued is not None and trainer.is_global_zero:
            requeued.requeue()  # last: Slurm stops the job's processes
    return metrics


def resume_checkpoint(ckpt_path: str | None, output_dir: Path) -> tuple[str | None, tuple[int, int] | None]:
    """``ckpt_path`` checked before any data is read, and the (epoch, global step) it was saved
    at; ``last`` is this run dir's last.ckpt (absent: a fresh start, so one command serves both
    the first launch and a requeued job)."""
    if not ckpt_path:
        return None, None
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            log.warning("ckpt_path=last: %s has no checkpoint yet; training from the start", last.parent)
            return None, None
        ckpt_path = str(last)
    if not Path(ckpt_path).is_file():
        raise UserInputError(f"ckpt_path={ckpt_path} is not a checkpoint file; pass a .ckpt file, a run dir or `last`.")
    state = read_checkpoint(ckpt_path)  # a damaged or unsafe file fails here, before any data is read
    for partial in Path(ckpt_path).parent.glob(".*.ckpt.*.tmp"):  # a write the killed run never finished
        log.info("removing %s, an unfinished checkpoint write", partial)
        partial.unlink(missing_ok=True)
    return str(ckpt_path), (int(state["epoch"]), int(state["global_step"]))


def run_record(output_dir: Path, ckpt_path: str | None, threads: ThreadChoice) -> dict:
    """run.json's provenance and thread count; a run resumed into its own dir keeps the original
    record and adds one entry per resume."""
    record = provenance() | threads.as_record()
    previous = output_dir / "run.json"
    if ckpt_path and previous.is_file():
        original = json.loads(previous.read_text())
        for stale in ("best_checkpoint", "best_epoch", "best_round"):
            original.pop(stale, None)
        resumes = original.pop("resumed", [])
        return {**original, "resumed": [*resumes, {**record, "from_checkpoint": ckpt_path}]}
    return record


def continue_logs(loggers: list[Logger], position: tuple[int, int]) -> None:
    """CSV logs of a resumed run extend the rows its checkpoint (``position``: epoch, global
    step) covers instead of restarting."""
    for logger in loggers:
        if isinstance(logger, ResumableCSVLogger):
            logger.resume_after = position


def _epoch_of(checkpoint: str | None) -> int | None:
    return None if checkpoint is None else int(read_checkpoint(checkpoint)["epoch"])


def final_round_metrics(cfg: DictConfig, trainer: L.Trainer, model: ConfiguredModule, datamodule: ExperimentData, output_dir: Path) -> dict[str, float]:
    """With reduction: the test metrics (and robustness) of the best checkpoint within the final
    round, as ``final_round/...``, with its epoch and validation score."""
    callback = next((c for c in trainer.callbacks if isinstance(c, FinalRoundCheckpoint)), None)
    if callback is None or not callback.best_model_path:
        return {}
    with model.testing_as("final_round/test"):
        metrics = _as_floats(trainer.test(model, datamodule=datamodule, ckpt_path=callback.best_model_path, verbose=False))
    metrics.update(split_test_metrics(trainer, model, datamodule, callback.best_model_path, prefix="final_round/"))
    metrics[f"final_round/{callback.monitor}"] = float(callback.best_model_score)
    metrics[FINAL_ROUND_EPOCH] = float(_epoch_of(callback.best_model_path))
    metrics.update(robustness_metrics(cfg, trainer, model, datamodule, output_dir / "robustness" / "final_round", prefix="final_round/test_shift"))
    return metrics


def round_of(trainer: L.Trainer, epoch: int) -> int | None:
    """The reduction round (from 1: round r trains on the set reduced r - 1 times) of ``epoch``;
    None without reduction."""
    reduction = next((c for c in trainer.callbacks if isinstance(c, TrainingInRounds)), None)
    return None if reduction is None else reduction.round_of(epoch)


def checkpoint_position(trainer: L.Trainer, checkpoint: str | None) -> dict[str, int]:
    """``best_epoch`` (counted from 0, as in the checkpoint names) and, with reduction, the
    ``best_round`` of ``checkpoint``."""
    if checkpoint is None:
        return {}
    epoch = _epoch_of(checkpoint)
    assert epoch is not None
    round_ = round_of(trainer, epoch)
    return {"best_epoch": epoch} | ({"best_round": round_} if round_ is not None else {})


def headline_columns(metrics: dict[str, float]) -> tuple[str, str]:
    """The final table's two headers: the best checkpoint over all rounds and the final round's
    best, each with its round, so the reduced model's numbers are not read as the unreduced one's."""
    best = f"best checkpoint (round {int(metrics['best_round'])})" if "best_round" in metrics else "value"
    final = f"final round's best (round {int(metrics[FINAL_ROUND_ROUND])})" if FINAL_ROUND_ROUND in metrics else "final round"
    return best, final


def describe_checkpoint(checkpoint: str | None, position: dict[str, int], output_dir: Path) -> str:
    """One line: which weights the printed metrics describe, and where the run dir is."""
    if checkpoint is None:
        return f"metrics of the final weights (no checkpoint was saved); run dir {output_dir}"
    where = f"epoch {position['best_epoch']}, counted from 0"
    if "best_round" in position:
        round_ = position["best_round"]
        where += f"; round {round_}, " + ("before the first reduction" if round_ == 1 else f"after reduction {round_ - 1}")
    return f"metrics of the best checkpoint {Path(checkpoint).name} ({where}); run dir {output_dir}"


def publish_metrics(loggers: list[Logger], metrics: dict[str, float], position: dict[str, int], step: int) -> None:
    """What no evaluation logged (the best's epoch and round, the final round's epoch and
    validation score) goes to every logger; a W&B run's summary is set to ``metrics.json``'s
    values (its last logged value of `val/*` is the last epoch's, not the best's)."""
    extra = {**position, **{k: v for k, v in metrics.items() if k in (FINAL_ROUND_EPOCH, FINAL_ROUND_ROUND) or k.startswith("final_round/val/")}}
    for logger in loggers:
        logger.log_metrics(extra, step=step)
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(metrics)


@contextmanager
def _unlogged(trainer: L.Trainer) -> Iterator[None]:
    """A pass inside the block sends nothing to the loggers."""
    loggers, trainer.loggers = trainer.loggers, []
    try:
        yield
    finally:
        trainer.loggers = loggers


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint's path; None (the weights in memory) when nothing was saved, e.g.
    with ``callbacks=none``."""
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and not isinstance(callback, FinalRoundCheckpoint) and callback.best_model_path:
            return callback.best_model_path
    log.warning("no best checkpoint was saved; evaluating the weights in memory")
    return None


def log_data_model() -> None:
    """Name the ``data_model`` file this run applied (``conf/data_model/<data>_<model>.yaml``,
    optional settings for one data x model pair) and the settings it sets, which the run's
    overrides may have overridden in turn."""
    if not HydraConfig.initialized():
        return
    choice = HydraConfig.get().runtime.choices.get("data_model")
    applied = CONF / "data_model" / f"{choice}.yaml"
    if choice is None or not applied.is_file():
        return
    settings = _dotted(OmegaConf.to_container(OmegaConf.load(applied)))
    log.info("data_model/%s.yaml applied: %s", choice, ", ".join(f"{k}={v}" for k, v in settings.items()))


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
