"""Runs of ``src.train`` inside the bench's process, composed with Hydra's compose API as the
CLI composes them, so a repeated measurement does not pay Python's start-up every time."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from src.config.compose import compose_config
from src.jobs.builders import build_datamodule

# the same net as the plain loop on both data sets (membrane's preset uses a larger one)
SAME_NET = ["model.net.depth=3", "model.net.base_width=16"]


def train_config(overrides: list[str]) -> DictConfig:
    """The config ``python -m src.train <overrides>`` would run, for its data and model sections
    (its run dir is gone)."""
    with tempfile.TemporaryDirectory() as scratch:
        return compose_config("train", overrides, Path(scratch))


def training_data(overrides: list[str]) -> tuple[DictConfig, L.LightningDataModule]:
    """That config and its data module, set up for fitting."""
    cfg = train_config(overrides)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return cfg, datamodule


def framework_fit(overrides: list[str], quiet: bool = True) -> dict[str, float]:
    """One ``src.train`` job (fit, then validate and test the best checkpoint) in a fresh run dir;
    its console output is discarded when ``quiet``."""
    from src.train import train

    with tempfile.TemporaryDirectory(prefix="bench-run-") as run_dir:
        cfg = compose_config("train", overrides, Path(run_dir))
        sink = open(os.devnull, "w")  # noqa: SIM115 - closed below, after the run
        try:
            with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
                return train(cfg)
        finally:
            sink.close()
