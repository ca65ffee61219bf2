"""Experiment loggers from config, with W&B never waiting on the network unasked."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def wandb_mode() -> str:
    """``WANDB_MODE`` if the user set it; ``online`` with an API key (env or ``wandb login``);
    otherwise ``offline``, so a machine without an account or network never hangs a run."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        netrc_path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
        if netrc_path.exists() and netrc.netrc(netrc_path).authenticators("api.wandb.ai"):
            return "online"
    except (netrc.NetrcParseError, OSError):
        pass
    return "offline"


def build_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    loggers: list[Logger] = []
    for cfg in (logger_cfg or {}).values():
        if cfg is None:
            continue
        if "wandb" in cfg.get("_target_", "").lower():
            mode = wandb_mode()
            os.environ["WANDB_MODE"] = mode
            log.info("W&B mode: %s", mode)
            loggers.append(instantiate(cfg, **{k: v for k, v in sweep_run_names().items() if not cfg.get(k)}))
            continue
        loggers.append(instantiate(cfg))
    return loggers


def sweep_run_names() -> dict[str, str]:
    """In a multirun: the sweep's name as the W&B group and the job's overrides as its run name,
    so one sweep's runs sit together and read by setting."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hydra_cfg = HydraConfig.get()
    return {"group": Path(hydra_cfg.sweep.dir).name, "name": hydra_cfg.job.override_dirname or f"job {hydra_cfg.job.num}"}


def log_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """The resolved config as every logger's hyperparameters (W&B config, CSV hparams.yaml,
    TensorBoard hparams), so runs can be filtered by setting."""
    # Hydra's own node (present when composed with return_hydra_config) is not the run's setting
    params = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key] for key in cfg if key != "hydra"}
    for logger in loggers:
        logger.log_hyperparams(params)


def finish_loggers(loggers: list[Logger]) -> None:
    """Flush and close every logger (results logged after ``trainer.test`` included), and finish
    W&B runs so each job of a multirun gets its own run."""
    for logger in loggers:
        logger.finalize("success")
        if isinstance(logger, WandbLogger):
            import wandb

            wandb.finish()
