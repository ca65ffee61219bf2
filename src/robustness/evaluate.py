"""Evaluating a segmentation model on its test split under every shift of the suite.

Writes ``robustness.csv`` (one row per shift and severity, severity 0 = the clean test set) and
``robustness.png`` (each metric against severity, per shift), and returns the summary metrics:
``<prefix>/<shift>/<metric>`` (mean over severities 1..3) and ``<prefix>/<metric>`` (mean over
shifts). The model's own test path is used (its test-time augmentation included); the metrics are
a fresh copy of its test metrics, computed on this process only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset
from torchmetrics import Metric

from src.config.errors import UserInputError
from src.data.contract import ExperimentData
from src.loggers.figures import save_figure
from src.models.losses import WEIGHTED, build_loss
from src.robustness.figure import severity_curves
from src.robustness.shifts import SEVERITIES, SHIFTS, item_generator
from src.storage.results import write_csv_atomic


class ShiftedDataset(Dataset):
    """``base``'s items (dicts with "image", "mask", "index") under one shift and severity, each
    drawn from (seed, index, shift, severity); per-pixel loss weights are dropped."""

    def __init__(self, base: Dataset, shift: str, severity: int, seed: int) -> None:
        self.base, self.shift, self.severity, self.seed = base, shift, severity, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.base[index]
        rng = item_generator(self.seed, int(item["index"]), self.shift, self.severity)
        image, mask = SHIFTS[self.shift](item["image"], item["mask"], self.severity, rng)
        return {"image": image, "mask": mask, "index": item["index"]}


def suite(options: Mapping[str, Any] | None, datamodule: ExperimentData) -> list[str]:
    """The configured shifts plus the data set's own (``natural_shifts``: off-centre placement
    on eliret, elastic deformation on membrane), each checked by name; empty without
    ``robustness.shifts``. Called before training: a bad name or a classification data set is
    refused before any time is spent."""
    if not options or not options.get("shifts"):
        return []
    if datamodule.task == "classification":
        raise UserInputError("robustness evaluates segmentation models; use robustness=none with classification data.")
    names = [*options["shifts"], *datamodule.natural_shifts]
    unknown = [n for n in names if n not in SHIFTS]
    if unknown:
        raise UserInputError(f"unknown robustness shift(s) {', '.join(unknown)} in robustness.shifts; choose from {', '.join(SHIFTS)}.")
    return list(dict.fromkeys(names))


@torch.no_grad()
def evaluate_loader(module: Any, loader: DataLoader) -> dict[str, float]:
    """The module's test metrics over ``loader`` (its test step's numbers, this process only)."""
    metrics = copy.deepcopy(module.test_metrics).to(module.device)
    for metric in metrics.modules():
        if isinstance(metric, Metric):
            metric.sync_on_compute = False
    metrics.reset()
    # a model trained with border weights is scored with its task's plain loss (shifts move pixels)
    loss_fn = build_loss(None, module.hparams.task, module.hparams.get("ignore_index"))[1] if module.loss_name in WEIGHTED else module.loss_fn
    was_training = module.training
    module.eval()
    try:
        for batch in loader:
            images, target = batch["image"].to(module.device), batch["mask"].to(module.device)
            logits = module.evaluation_logits(images)
            metrics.update(module.probabilities(logits), target, loss_fn(logits, target, None))
    finally:
        module.train(was_training)
    return {k: float(v) for k, v in metrics.compute().items()}


def evaluate_shifts(
    module: Any, datamodule: ExperimentData, options: Mapping[str, Any], output_dir: Path, seed: int, prefix: str = "test_shift"
) -> dict[str, float]:
    """Every shift at severities 1..3 on the test split; writes ``output_dir``/robustness.csv
    and robustness.png and returns the summary metrics (see the module's docstring)."""
    if not hasattr(module, "test_metrics") or not hasattr(module, "probabilities"):
        raise UserInputError(f"robustness evaluates segmentation models; {type(module).__name__} is not one (use robustness=none).")
    names = suite(options, datamodule)
    datamodule.setup("test")
    clean_loader = datamodule.test_dataloader()
    base, batch_size = clean_loader.dataset, clean_loader.batch_size or 1
    clean = evaluate_loader(module, clean_loader)
    rows: list[dict[str, Any]] = []
    for shift in names:
        rows.append({"shift": shift, "severity": 0, **clean})
        for severity in SEVERITIES:
            loader = DataLoader(ShiftedDataset(base, shift, severity, seed), batch_size=batch_size, shuffle=False)
            rows.append({"shift": shift, "severity": severity, **evaluate_loader(module, loader)})
    output_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(output_dir / "robustness.csv", rows)
    save_figure(severity_curves(rows), output_dir / "robustness.png")
    return summary(rows, prefix)


def summary(rows: Sequence[Mapping[str, Any]], prefix: str = "test_shift") -> dict[str, float]:
    """``<prefix>/<shift>/<metric>``: the mean over severities >= 1 of each shift (the metric's
    name without its split); ``<prefix>/<metric>``: the mean of those over shifts."""
    out: dict[str, float] = {}
    per_metric: dict[str, list[float]] = {}
    for shift in dict.fromkeys(r["shift"] for r in rows):
        shifted = [r for r in rows if r["shift"] == shift and r["severity"] > 0]
        for key in (k for k in shifted[0] if k not in ("shift", "severity")):
            name = key.split("/", 1)[-1]
            value = sum(r[key] for r in shifted) / len(shifted)
            out[f"{prefix}/{shift}/{name}"] = value
            per_metric.setdefault(name, []).append(value)
    out.update({f"{prefix}/{name}": sum(v) / len(v) for name, v in per_metric.items()})
    return out


def robustness_metrics(cfg: DictConfig, trainer: L.Trainer, model: Any, datamodule: ExperimentData, out: Path, prefix: str = "test_shift") -> dict[str, float]:
    """With ``robustness=standard``: the model's weights as they are (the checkpoint just tested)
    under every shift, on rank 0, also sent to the loggers."""
    options = cfg.get("robustness")
    if not options or not options.get("shifts") or not trainer.is_global_zero:
        return {}
    shifted = evaluate_shifts(model, datamodule, options, out, seed=int(options.get("seed", cfg.seed)), prefix=prefix)
    for logger in trainer.loggers:
        logger.log_metrics(shifted, step=trainer.global_step)
    return shifted


def is_per_shift(name: str) -> bool:
    """Whether ``name`` is one shift's figure (``.../test_shift/<shift>/<metric>``), which the
    printed tables leave to robustness.csv."""
    _, found, rest = name.partition("test_shift/")
    return bool(found) and "/" in rest
