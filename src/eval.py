"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=<run>/checkpoints/last.ckpt [data=...]``.

The model (net, output mode, normalisation) is rebuilt from the checkpoint alone; the data comes
from the config, so pass the ``data=...`` overrides the model was trained with.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from src.config.errors import UserInputError
from src.config.help import answer_help
from src.config.user_errors import exit_on_user_error
from src.early_exit.report import early_exit_report
from src.jobs.builders import build_datamodule, build_trainer
from src.jobs.test_splits import split_test_metrics
from src.loggers.build import build_loggers, finish_loggers
from src.loggers.noise import silence_lightning_noise
from src.models.early_exit import EarlyExitClassifier
from src.robustness.evaluate import is_per_shift, robustness_metrics, suite
from src.storage.checkpoints import load_module
from src.storage.results import print_metrics, write_json_atomic


def evaluate(cfg: DictConfig) -> dict[str, float]:
    if cfg.split not in ("test", "val"):
        raise UserInputError(f"split={cfg.split!r} must be test or val.")
    silence_lightning_noise()  # before the first line Lightning logs
    L.seed_everything(cfg.seed, workers=True)
    model = load_module(cfg.ckpt_path)
    datamodule = build_datamodule(cfg)
    suite(cfg.get("robustness") if cfg.split == "test" else None, datamodule)
    if cfg.get("tta") is not None and "tta" in model.hparams:
        model.hparams.tta = bool(cfg.tta)
    early_exit = isinstance(model, EarlyExitClassifier)
    names = ("in_channels", "num_classes") if early_exit else ("in_channels", "out_channels", "task")
    for name in names:
        if model.hparams.get(name) != getattr(datamodule, name, None):
            raise UserInputError(
                f"the checkpoint's {name}={model.hparams[name]!r} does not match the data's "
                f"{getattr(datamodule, name)!r}; pass the data=... overrides the model was trained with."
            )
    loggers = build_loggers(cfg.get("logger"))
    trainer = build_trainer(cfg, [], loggers)
    try:
        run = trainer.test if cfg.split == "test" else trainer.validate
        metrics = {k: float(v) for r in run(model, datamodule=datamodule, verbose=False) for k, v in r.items()}
        if cfg.split == "test":
            metrics.update(split_test_metrics(trainer, model, datamodule, ckpt_path=None))
        if early_exit and trainer.is_global_zero:
            metrics.update(early_exit_report(model, datamodule, Path(cfg.paths.output_dir), cfg.early_exit, trainer.loggers))
        if cfg.split == "test":
            metrics.update(robustness_metrics(cfg, trainer, model, datamodule, Path(cfg.paths.output_dir) / "robustness"))
        if trainer.is_global_zero:
            write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", metrics)
            print_metrics({k: v for k, v in metrics.items() if not is_per_shift(k)}, title=f"{cfg.split}: {cfg.ckpt_path}")
    finally:
        finish_loggers(loggers)
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


def cli() -> None:
    """``python -m src.eval`` / ``salseg-eval``; ``--help`` lists the groups and the config."""
    if not answer_help("eval"):
        main()


if __name__ == "__main__":
    cli()
