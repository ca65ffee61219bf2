"""Testing one checkpoint on every test split a data set offers (the shortcut set's aligned,
reversed and neutral), beside its configured ``test/...`` split."""

from __future__ import annotations

import lightning as L


def split_test_metrics(
    trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule, ckpt_path: str | None, prefix: str = ""
) -> dict[str, float]:
    """``<prefix>test_<split>/<metric>`` for each of ``datamodule.test_splits`` (none: empty),
    tested from ``ckpt_path`` (None: the weights in memory)."""
    metrics: dict[str, float] = {}
    for name in getattr(datamodule, "test_splits", ()):
        results = trainer.test(model, dataloaders=datamodule.split_dataloader(name), ckpt_path=ckpt_path, verbose=False)
        metrics.update({f"{prefix}test_{name}/{key.removeprefix('test/')}": float(value) for result in results for key, value in result.items()})
    return metrics
