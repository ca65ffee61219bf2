"""Checkpoints are read without running code; credentials never reach a file the run writes."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from src.config.errors import UserInputError
from src.storage.checkpoints import load_module
from src.train import train


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _crafted_checkpoint(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": {}, "module_class": "src.models.segmentation.SegmentationModule", "x": _Payload(marker)}))
    return path


def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    checkpoint = _crafted_checkpoint(tmp_path / "model.ckpt", marker)
    with pytest.raises(UserInputError, match="refused: loading them could run code"):
        load_module(checkpoint)
    assert not marker.exists()


@pytest.mark.slow
def test_resuming_from_a_crafted_checkpoint_stops_before_any_data_is_read(make_cfg, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    checkpoint = _crafted_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(UserInputError, match="cannot read checkpoint"):
        train(make_cfg("train", f"ckpt_path={checkpoint}", "paths.data_dir=/nonexistent"))
    assert not marker.exists()


@pytest.mark.slow
def test_credentials_never_reach_the_run_dir(make_cfg, tmp_path: Path, monkeypatch) -> None:
    key, password = "0123456789abcdef0123456789abcdef01234567", "netrc-pass-9f8e7d"
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {password}\n")
    monkeypatch.setenv("WANDB_API_KEY", key)
    monkeypatch.setenv("NETRC", str(netrc))
    run = tmp_path / "run"
    run.mkdir()
    cfg = make_cfg("train", "logger=[csv,wandb]", "reduction.rounds=2", "reduction.epochs_per_round=1", "trainer.limit_train_batches=2")
    cfg.paths.output_dir = str(run)
    train(cfg)
    written = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in written) and any(p.name == "hparams.yaml" for p in written)
    for path in written:
        content = path.read_bytes()
        assert key.encode() not in content and password.encode() not in content, path
