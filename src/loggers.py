"""Experiment loggers from config, with W&B never waiting on the network unasked."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig

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
        loggers.append(instantiate(cfg))
    return loggers


def finish_loggers(loggers: list[Logger]) -> None:
    """Flush and close every logger (results logged after ``trainer.test`` included), and finish
    W&B runs so each job of a multirun gets its own run."""
    for logger in loggers:
        logger.finalize("success")
        if isinstance(logger, WandbLogger):
            import wandb

            wandb.finish()
