"""One evaluation job: rebuild the model from a checkpoint alone, test (or validate) it on the
configured data, and run the steps after testing that the training job runs too."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from src.config.errors import UserInputError
from src.data.contract import ExperimentData, experiment_data
from src.jobs.after_test import after_test, write_metrics
from src.jobs.builders import build_datamodule, build_trainer, set_torch_threads
from src.loggers.build import build_loggers, finish_loggers
from src.loggers.noise import silence_lightning_noise
from src.models.early_exit import EarlyExitClassifier
from src.robustness.evaluate import suite
from src.storage.checkpoints import load_module

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test (or validate, ``split=val``) a checkpoint on the configured data; returns the metrics."""
    if cfg.split not in ("test", "val"):
        raise UserInputError(f"split={cfg.split!r} must be test or val.")
    set_torch_threads(cfg)
    silence_lightning_noise()  # before the first line Lightning logs
    L.seed_everything(cfg.seed, workers=True)
    model = load_module(cfg.ckpt_path)
    datamodule = build_datamodule(with_run_data(cfg))
    suite(cfg.get("robustness") if cfg.split == "test" else None, datamodule)
    if cfg.get("tta") is not None and "tta" in model.hparams:
        model.hparams.tta = bool(cfg.tta)
    for name, value in _data_shape(model, datamodule).items():
        if model.hparams.get(name) != value:
            raise UserInputError(
                f"the checkpoint's {name}={model.hparams[name]!r} does not match the data's "
                f"{value!r}; pass the data=... overrides the model was trained with "
                "(its run's .hydra/config.yaml, read when the checkpoint sits in its run dir, names them)."
            )
    output_dir = Path(cfg.paths.output_dir)
    loggers = build_loggers(cfg.get("logger"))
    trainer = build_trainer(cfg, [], loggers)
    try:
        run = trainer.test if cfg.split == "test" else trainer.validate
        metrics = {k: float(v) for r in run(model, datamodule=datamodule, verbose=False) for k, v in r.items()}
        metrics.update(after_test(cfg, trainer, model, datamodule, output_dir, ckpt_path=None, tested=cfg.split == "test"))
        write_metrics(trainer, output_dir, metrics, title=f"{cfg.split}: {cfg.ckpt_path}")
    finally:
        finish_loggers(loggers)
    return metrics


def with_run_data(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the data config of the checkpoint's own run (``<run>/.hydra/config.yaml``
    beside ``checkpoints/``) where there is one and the command line picks no data set
    (``data=...``); ``data.*`` overrides on the command line still win."""
    run_config = Path(cfg.ckpt_path).resolve().parent.parent / ".hydra" / "config.yaml"
    typed = [str(o) for o in (HydraConfig.get().overrides.task if HydraConfig.initialized() else [])]
    keys = [o.split("=", 1)[0].lstrip("+~") for o in typed]
    if not run_config.is_file() or "data" in keys:
        return cfg
    trained = OmegaConf.load(run_config).get("data")
    if trained is None:
        return cfg
    given = [o.lstrip("+~") for o, key in zip(typed, keys) if key.startswith("data.")]
    merged = cfg.copy()
    with open_dict(merged):
        merged.data = OmegaConf.merge(trained, OmegaConf.from_dotlist(given))
    log.info("data: as the checkpoint's run trained (%s)%s", run_config, f", with {' '.join(given)}" if given else "")
    return merged


def _data_shape(model: L.LightningModule, datamodule: ExperimentData) -> dict[str, object]:
    """What the checkpoint's model must share with the data: channels, and classes or task."""
    if isinstance(model, EarlyExitClassifier):
        experiment_data(datamodule, "classification")
        return {"in_channels": datamodule.in_channels, "num_classes": datamodule.num_classes}
    experiment_data(datamodule, "segmentation")
    return {"in_channels": datamodule.in_channels, "out_channels": datamodule.out_channels, "task": datamodule.task}
