"""The early-exit evaluation of a trained model on its data module, for train and eval."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L

from src.early_exit.evaluate import evaluate_exits
from src.models.early_exit import EarlyExitClassifier


def early_exit_report(module: EarlyExitClassifier, datamodule: L.LightningDataModule, output_dir: Path, options: Mapping[str, Any]) -> dict[str, float]:
    datamodule.setup("test")
    return evaluate_exits(
        module,
        datamodule.val_dataloader(),
        datamodule.test_dataloader(),
        Path(output_dir) / "early_exit",
        saliency_method=options["saliency_method"],
        max_accuracy_drop=options["max_accuracy_drop"],
        timing_samples=options["timing_samples"],
    )
