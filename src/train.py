"""Train a model: ``python -m src.train [overrides]``.

Fits, then validates and tests the *best* checkpoint, writes ``metrics.json`` into the run dir
and returns ``optimized_metric`` for Hydra sweepers. The config is composed and checked before
torch and Lightning are imported, so ``--help``, a misspelt key and an out-of-range value answer
at once.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.config.errors import UserInputError
from src.config.help import answer_help
from src.config.registration import register
from src.config.schemas import check_ranges
from src.config.user_errors import exit_on_user_error
from src.runs.rerun import main_with_run_dirs

register()  # the configs' resolvers and schemas, in this process and in a sweep's workers


def check_config(cfg: DictConfig) -> None:
    """What can be checked on the config alone, before any heavy import."""
    if not str(cfg.optimized_metric).startswith(("val/", "test/")):
        raise UserInputError(f"optimized_metric={cfg.optimized_metric!r} must name a val/ or test/ metric, e.g. val/loss.")
    check_ranges(cfg)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job described by ``cfg``; returns the final metrics."""
    check_config(cfg)
    from src.jobs.training import run_training  # torch and Lightning: only for a valid config

    return run_training(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    metrics = train(cfg)
    if cfg.optimized_metric not in metrics:
        raise UserInputError(f"optimized_metric={cfg.optimized_metric!r} was not logged; available: {', '.join(sorted(metrics))}.")
    return metrics[cfg.optimized_metric]


def cli() -> None:
    """``python -m src.train`` / ``salseg-train``: also ``--rerun <run dir>`` and ``ckpt_path=<run dir>``."""
    if not answer_help("train"):
        main_with_run_dirs(main)


if __name__ == "__main__":
    cli()
