"""A run's config composed in-process, as the CLI composes it (Hydra's compose API): what the
tests and the bench run without starting a process per job."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict

from src.config.registration import register

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``python -m src.<config_name> <overrides>`` would run (``train``, ``eval``,
    ``predict``), writing into ``output_dir``; Hydra's run-time config is set as the CLI sets it."""
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def hydra_mode(config_name: str, overrides: list[str]) -> str:
    """``hydra.mode`` the overrides give (RUN, or MULTIRUN: ``-m`` on the command line, or a preset
    that sets it, e.g. the study presets and ``hparams_search``); sweep values (``a,b``) are left
    out, since only the presets decide it."""
    register()
    GlobalHydra.instance().clear()
    plain = [o for o in overrides if "=" in o and not o.startswith("-") and "," not in o.split("=", 1)[1]]
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            cfg = compose(config_name, overrides=plain, return_hydra_config=True)
    except HydraException:  # a mistake in the overrides: the checks that follow name it
        return "RUN"
    finally:
        GlobalHydra.instance().clear()
    mode = cfg.hydra.mode  # a RunMode, or None where nothing set it
    return "RUN" if mode is None else str(getattr(mode, "name", mode))
