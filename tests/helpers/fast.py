"""Overrides that keep a training test short: two batches an epoch, no model summary."""

FAST = ("trainer.limit_train_batches=2", "callbacks.model_summary=null")
