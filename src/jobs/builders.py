"""Instantiating the pieces of a run from its Hydra config."""

from __future__ import annotations

import logging

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from src.callbacks.finite_loss import FiniteLoss
from src.callbacks.random_state import RandomState
from src.callbacks.requeue import RequeueOnSignal
from src.config.errors import UserInputError
from src.data.contract import ExperimentData, experiment_data
from src.loggers.noise import silence_lightning_noise
from src.reduction.final_round import FinalRoundCheckpoint
from src.reduction.masking import REMOVED_TARGET
from src.runs.threads import ThreadChoice, choose_threads
from src.storage.checkpoint_io import BackgroundCheckpointIO

log = logging.getLogger(__name__)


def set_torch_threads(cfg: DictConfig) -> ThreadChoice:
    """``torch_threads``, a key every entry point takes: the CPU threads this job's torch uses
    (null: the idle cores this process may use, src/runs/threads.py)."""
    choice = choose_threads(cfg.get("torch_threads"))
    torch.set_num_threads(choice.threads)
    log.info("torch uses %d CPU thread(s) (%s)", choice.threads, choice.reason)
    return choice


def build_datamodule(cfg: DictConfig) -> ExperimentData:
    """The data module, checked to state what the jobs read from it (src/data/contract.py)."""
    return experiment_data(instantiate(cfg.data))


def build_model(cfg: DictConfig, datamodule: ExperimentData) -> L.LightningModule:
    """The model config plus what only the data knows: channels, output mode, normalisation."""
    kind = model_kind(cfg)
    if datamodule.task == "classification":
        if kind != "classification":
            raise UserInputError(f"data {type(datamodule).__name__} is for classification; use model=early_exit_cnn.")
        datamodule = experiment_data(datamodule, "classification")
        model = instantiate(
            cfg.model,
            in_channels=datamodule.in_channels,
            num_classes=datamodule.num_classes,
            input_mean=list(datamodule.mean),
            input_std=list(datamodule.std),
        )
        return with_example_input(model, datamodule)
    if kind == "classification":
        raise UserInputError("model=early_exit_cnn is a classifier; use it with data=eliret_cls or data=pet_cls.")
    datamodule = experiment_data(datamodule, "segmentation")
    model = instantiate(
        cfg.model,
        task=datamodule.task,
        in_channels=datamodule.in_channels,
        out_channels=datamodule.out_channels,
        input_mean=list(datamodule.mean),
        input_std=list(datamodule.std),
        challenge_metrics=datamodule.challenge_metrics,
        ignore_index=training_ignore_index(cfg, datamodule),
        eval_window=datamodule.eval_window,
    )
    return with_example_input(model, datamodule)


def model_kind(cfg: DictConfig) -> str:
    """What ``cfg.model`` learns from (its module's ``kind``): segmentation or classification."""
    kind = getattr(get_class(cfg.model._target_), "kind", None)
    if kind not in ("segmentation", "classification"):
        raise UserInputError(
            f'model._target_={cfg.model._target_} states no kind; give its class `kind = "segmentation"` (or "classification"), '
            "as src.models.base.ConfiguredModule's subclasses do."
        )
    return kind


def training_ignore_index(cfg: DictConfig, datamodule: ExperimentData) -> int | None:
    """The data's ignore index; with ``reduction.removed=ignore`` one is needed for the removed
    pixels, so a data set without one gets :data:`REMOVED_TARGET`."""
    ignore_index = datamodule.ignore_index
    reduction = cfg.get("reduction") or {}
    if ignore_index is None and reduction.get("removed") == "ignore" and (reduction.get("rounds") or 0) > 0:
        return REMOVED_TARGET
    return ignore_index


def with_example_input(model: L.LightningModule, datamodule: ExperimentData) -> L.LightningModule:
    """One image of the training size as the model's example input, so the model summary counts
    real FLOPs (without one it prints 0); data modules without an ``example_size`` go without."""
    size = datamodule.example_size
    if size is not None:
        model.example_input_array = torch.zeros(1, datamodule.in_channels, *size)
    return model


def build_callbacks(cfg: DictConfig, segmentation: bool = True) -> list[Callback]:
    """The callbacks group, plus the reduction callback when ``reduction`` has a target, at least
    one round and the task is segmentation (the reduction keeps pixels of segmentation targets),
    with a checkpoint of the best epoch within its final round (beside the run's best)."""
    # a callback set to null (`callbacks.progress_bar=null`) is switched off
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    reduction = cfg.get("reduction")
    if reduction and "_target_" in reduction:
        if reduction.get("rounds") == 0:
            log.info("reduction.rounds=0: training once, without saliency reduction")
        elif segmentation:
            _refuse_early_stop_between_rounds(cfg)
            reducer = instantiate(reduction)
            callbacks.insert(0, reducer)
            best = (cfg.get("callbacks") or {}).get("model_checkpoint")
            if best is not None:
                start = (reducer.rounds - 1) * reducer.epochs_per_round
                callbacks.append(FinalRoundCheckpoint(start, best.dirpath, best.get("monitor") or "val/loss", best.get("mode", "min")))
        else:
            log.warning("saliency reduction applies to segmentation data; this classification run trains once")
    swap = cfg.get("background_swap")
    if swap and "_target_" in swap:
        if not segmentation:
            raise UserInputError("background_swap needs segmentation targets (the objects' pixels); this is a classification run.")
        callbacks.insert(0, instantiate(swap))
    return callbacks


def _refuse_early_stop_between_rounds(cfg: DictConfig) -> None:
    """Early stopping ends the whole fit, so with reduction rounds inside the fit it would stop at
    the first round's plateau and skip the rest."""
    reduction = cfg.reduction
    in_fit_rounds = reduction.rounds - (1 if reduction.get("maps_from") else 0)
    if (cfg.get("callbacks") or {}).get("early_stopping") is not None and in_fit_rounds > 0:
        raise UserInputError(
            f"callbacks.early_stopping would end the fit at the first round's plateau, but reduction.rounds={reduction.rounds} "
            "reduces between rounds of this fit; set callbacks.early_stopping=null, or reduce once before training "
            "(reduction.rounds=1 reduction.maps_from=<a trained run>)."
        )


def build_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> L.Trainer:
    """The trainer config plus what every run gets: random states in checkpoints (exact resume),
    a stop on a non-finite loss, checkpoints written atomically, in the background, and under
    Slurm a requeue on SIGUSR1 at an epoch's end (instead of Lightning's mid-epoch one)."""
    silence_lightning_noise()
    guards = [RandomState(cfg.seed), FiniteLoss(), RequeueOnSignal()]
    plugins: list = [BackgroundCheckpointIO()]
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return instantiate(cfg.trainer, callbacks=[*callbacks, *guards], logger=loggers or False, plugins=plugins)
