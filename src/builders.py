"""Instantiating the pieces of a run from its Hydra config."""

from __future__ import annotations

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from src.checkpoint_io import AtomicCheckpointIO


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    return instantiate(cfg.data)


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """The model config plus what only the data knows: channels, output mode, normalisation."""
    return instantiate(
        cfg.model,
        task=datamodule.task,
        in_channels=datamodule.in_channels,
        out_channels=datamodule.out_channels,
        input_mean=list(datamodule.mean),
        input_std=list(datamodule.std),
        challenge_metrics=getattr(datamodule, "challenge_metrics", False),
    )


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    """The callbacks group, plus the reduction callback when ``reduction`` has a target."""
    # a callback set to null (`callbacks.progress_bar=null`) is switched off
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    reduction = cfg.get("reduction")
    if reduction and "_target_" in reduction:
        callbacks.insert(0, instantiate(reduction))
    return callbacks


def build_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> L.Trainer:
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()])
