"""The early-exit evaluation of a trained model on its data module, for train and eval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger

from src.early_exit.evaluate import evaluate_exits
from src.loggers.figures import log_images
from src.models.early_exit import EarlyExitClassifier


def early_exit_evaluation(
    module: EarlyExitClassifier,
    datamodule: L.LightningDataModule,
    output_dir: Path,
    options: Mapping[str, Any],
    loggers: Sequence[Logger] = (),
    step: int = 0,
) -> dict[str, float]:
    """Evaluate, write ``<output_dir>/early_exit/``, and send the numbers and both figures to the
    loggers (W&B/TensorBoard get the images)."""
    datamodule.setup("test")
    out = Path(output_dir) / "early_exit"
    metrics = evaluate_exits(
        module,
        datamodule.val_dataloader(),
        datamodule.test_dataloader(),
        out,
        saliency_method=options["saliency_method"],
        max_accuracy_drop=options["max_accuracy_drop"],
        timing_samples=options["timing_samples"],
    )
    for logger in loggers:
        logger.log_metrics({k: v for k, v in metrics.items() if k.startswith("early_exit/") or "_exit" in k}, step=step)
    log_images(loggers, {"early_exit/tradeoff": out / "tradeoff.png", "early_exit/saliency_exits": out / "saliency_exits.png"}, step=step)
    return metrics
