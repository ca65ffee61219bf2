"""A diverging loss stops the run at once with where it happened; checkpoints stay good."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from src.config.errors import TrainingDiverged
from src.models.segmentation import SegmentationModule
from src.train import train

FAST = ("trainer.limit_train_batches=3", "callbacks.model_summary=null", "test=false")


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_naming_step_epoch_and_round(make_cfg, tmp_path: Path, monkeypatch) -> None:
    step = SegmentationModule._step

    def nan_from_step_7(self, batch, split):
        loss = step(self, batch, split)
        return loss * float("nan") if split == "train" and self.global_step >= 7 else loss

    monkeypatch.setattr(SegmentationModule, "_step", nan_from_step_7)
    cfg = make_cfg("train", "reduction.rounds=2", "reduction.epochs_per_round=2", *FAST)
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 7, epoch 2, reduction round 2 of 2.*last\.ckpt, is intact.*model\.optimizer\.lr"):
        train(cfg)
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] == 6  # the last epoch that ended well
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


@pytest.mark.slow
def test_an_inf_loss_before_any_checkpoint_says_none_was_written(make_cfg, tmp_path: Path, monkeypatch) -> None:
    step = SegmentationModule._step
    monkeypatch.setattr(SegmentationModule, "_step", lambda self, batch, split: step(self, batch, split) + float("inf"))
    with pytest.raises(TrainingDiverged, match=r"loss is inf at step 0, epoch 0.*No checkpoint was written"):
        train(make_cfg("train", "reduction=none", *FAST))
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


@pytest.mark.slow
def test_the_checkpoint_a_run_resumes_from_is_not_rewritten_by_a_failed_resume(make_cfg, tmp_path: Path, monkeypatch) -> None:
    train(make_cfg("train", "reduction=none", "trainer.max_epochs=1", *FAST))
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = hashlib.sha256(last.read_bytes()).hexdigest()
    step = SegmentationModule._step
    monkeypatch.setattr(SegmentationModule, "_step", lambda self, batch, split: step(self, batch, split) * float("nan"))
    with pytest.raises(TrainingDiverged, match="step 3, epoch 1"):
        train(make_cfg("train", "reduction=none", "trainer.max_epochs=2", "ckpt_path=last", *FAST))
    assert hashlib.sha256(last.read_bytes()).hexdigest() == before
