"""The background checkpoint writer: training only snapshots, and the writes keep the order,
the atomicity and the errors of synchronous ones."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from src.storage.checkpoint_io import AtomicCheckpointIO, BackgroundCheckpointIO, CheckpointWriteError


class GatedIO(AtomicCheckpointIO):
    """Atomic writes that wait for ``gate`` and record what they did, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.done: list[tuple[str, str, str]] = []  # (operation, file name, thread name)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        assert self.gate.wait(timeout=30)
        super().save_checkpoint(checkpoint, path, storage_options)
        self.done.append(("write", Path(path).name, threading.current_thread().name))

    def remove_checkpoint(self, path: Any) -> None:
        super().remove_checkpoint(path)
        self.done.append(("remove", Path(path).name, threading.current_thread().name))


def test_training_goes_on_while_the_writer_writes_a_snapshot(tmp_path: Path) -> None:
    inner = GatedIO()
    io = BackgroundCheckpointIO(inner)
    weights = torch.zeros(4)
    io.save_checkpoint({"weights": weights, "history": [{"round": 1}]}, tmp_path / "last.ckpt")
    assert not (tmp_path / "last.ckpt").exists()  # save returned before the write
    weights += 1  # training moves on; the file must hold the state at save time
    inner.gate.set()
    io.teardown()
    saved = io.load_checkpoint(tmp_path / "last.ckpt")
    assert torch.equal(saved["weights"], torch.zeros(4)) and saved["history"] == [{"round": 1}]
    assert inner.done[0][2] != threading.main_thread().name
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_old_best_goes_only_after_the_new_best_is_on_disk(tmp_path: Path) -> None:
    inner = GatedIO()
    io = BackgroundCheckpointIO(inner)
    inner.gate.set()
    io.save_checkpoint({"epoch": 0}, tmp_path / "epoch_000.ckpt")
    assert io.load_checkpoint(tmp_path / "epoch_000.ckpt") == {"epoch": 0}  # a load waits for the writes
    inner.gate.clear()
    io.save_checkpoint({"epoch": 1}, tmp_path / "epoch_001.ckpt")
    io.remove_checkpoint(tmp_path / "epoch_000.ckpt")
    assert (tmp_path / "epoch_000.ckpt").exists()  # the new best is not written yet
    inner.gate.set()
    io.teardown()
    assert [op[:2] for op in inner.done] == [("write", "epoch_000.ckpt"), ("write", "epoch_001.ckpt"), ("remove", "epoch_000.ckpt")]
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_001.ckpt"]


def test_snapshots_do_not_pile_up(tmp_path: Path) -> None:
    inner = GatedIO()
    io = BackgroundCheckpointIO(inner, max_pending=2)
    io.save_checkpoint({"epoch": 0}, tmp_path / "a.ckpt")
    io.save_checkpoint({"epoch": 0}, tmp_path / "b.ckpt")
    third = threading.Thread(target=io.save_checkpoint, args=({"epoch": 1}, tmp_path / "c.ckpt"))
    third.start()
    third.join(timeout=0.5)
    assert third.is_alive(), "a third write was queued while two were pending"
    inner.gate.set()
    third.join(timeout=30)
    io.teardown()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt", "b.ckpt", "c.ckpt"]


@pytest.mark.parametrize("stop", ["next checkpoint", "end of the fit"])
def test_a_failed_write_stops_the_run_naming_the_file(tmp_path: Path, stop: str) -> None:
    io = BackgroundCheckpointIO(max_pending=1)
    blocked = tmp_path / "not a dir"
    blocked.write_text("a file where the checkpoint directory should be")
    io.save_checkpoint({"epoch": 3}, blocked / "last.ckpt")  # returns: the write fails in the background
    with pytest.raises(CheckpointWriteError, match=r"could not write checkpoint .*not a dir/last\.ckpt"):
        if stop == "next checkpoint":
            io.save_checkpoint({"epoch": 4}, tmp_path / "last.ckpt")
        else:
            io.teardown()
