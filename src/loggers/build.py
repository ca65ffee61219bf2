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
            loggers.append(instantiate(cfg, **{k: v for k, v in run_names().items() if not cfg.get(k)}))
            continue
        loggers.append(instantiate(cfg))
    return loggers


def run_names() -> dict[str, str]:
    """The W&B run's name (and group): in a multirun, the sweep's name as the group and the
    job's values of the swept settings as the name (``seed=1,model=fcn``: not the overrides every
    job shares), so one sweep's runs sit together and read by what differs; a single run is named
    by its task and run dir (``train 2026-12-06_03-14-07_123456``), as its outputs are."""
    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        output_dir = OmegaConf.select(hydra_cfg, "runtime.output_dir", default=None)
        return {"name": f"{hydra_cfg.job.name} {Path(output_dir).name}"} if output_dir else {}
    swept = swept_keys(hydra_cfg)
    values = [o for o in hydra_cfg.overrides.task if o.split("=", 1)[0].lstrip("+~") in swept]
    return {"group": Path(hydra_cfg.sweep.dir).name, "name": ",".join(values) or f"job {hydra_cfg.job.num}"}


def swept_keys(hydra_cfg: DictConfig) -> set[str]:
    """The keys a multirun varies: its sweep overrides (``seed=0,1``, ``range(...)``, in the
    sweep's multirun.yaml, which holds the command line as typed) and the sweeper's ``params``
    and ``grids`` (the presets' sweeps)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = hydra_cfg.sweeper
    keys = {str(k) for k in (sweeper.get("params") or {})}
    keys |= {str(k) for grid in (sweeper.get("grids") or []) for k in grid}
    multirun = Path(hydra_cfg.sweep.dir) / "multirun.yaml"
    if multirun.is_file():
        typed = OmegaConf.load(multirun).hydra.overrides.task
        keys |= {o.key_or_group for o in OverridesParser.create().parse_overrides(list(typed)) if o.is_sweep_override()}
    return keys


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
