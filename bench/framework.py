"""Runs of ``src.train`` inside the bench's process, composed with Hydra's compose API as the
CLI composes them, so a repeated measurement does not pay Python's start-up every time."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"

# the same net as the plain loop on both data sets (membrane's preset uses a larger one)
SAME_NET = ["model.net.depth=3", "model.net.base_width=16"]


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python -m src.train <overrides>`` would run, writing into ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def framework_fit(overrides: list[str], quiet: bool = True) -> dict[str, float]:
    """One ``src.train`` job (fit, then validate and test the best checkpoint) in a fresh run dir;
    its console output is discarded when ``quiet``."""
    from src.train import train

    with tempfile.TemporaryDirectory(prefix="bench-run-") as run_dir:
        cfg = compose_train(overrides, Path(run_dir))
        sink = open(os.devnull, "w")  # noqa: SIM115 - closed below, after the run
        try:
            with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
                return train(cfg)
        finally:
            sink.close()
