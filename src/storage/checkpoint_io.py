"""Checkpoint writes that never leave a truncated file behind, never hold up training, and reads
that never run code."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.plugins.io import AsyncCheckpointIO
from lightning_utilities.core.apply_func import apply_to_collection

from src.config.errors import UserInputError


class CheckpointWriteError(UserInputError):
    """A checkpoint could not be written (no space, no permission); the previous one is intact."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, fsync it, then rename it into place,
    so a run killed mid-write (or a machine that loses power) keeps the previous ``last.ckpt``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options)
            with tmp.open("rb") as written:
                os.fsync(written.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        """``weights_only=True`` unless a caller asks otherwise: a resumed or evaluated checkpoint
        may come from anyone, and ours hold only tensors and plain values."""
        located = {} if map_location is None else {"map_location": map_location}
        return super().load_checkpoint(path, weights_only=True if weights_only is None else weights_only, **located)


def snapshot(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A copy of a checkpoint that training cannot change: its tensors copied into CPU memory,
    its containers rebuilt, other values (numbers, strings) shared."""
    return apply_to_collection(checkpoint, torch.Tensor, lambda tensor: tensor.detach().to("cpu", copy=True))


class BackgroundCheckpointIO(AsyncCheckpointIO):
    """Lightning's ``AsyncCheckpointIO`` (one writer thread) with the guarantees of a
    synchronous write kept:

    - the training thread only copies the checkpoint's tensors into CPU memory; the writer
      serialises, fsyncs and renames (``AtomicCheckpointIO``), one file at a time, in order;
    - a removal (the previous best) is queued behind the writes before it, so a kill never
      leaves a run with no best checkpoint; a load, and the end of every fit, wait for the queue;
    - at most ``max_pending`` writes wait (one epoch's best and last by default): the next
      checkpoint waits for the oldest, so snapshots cannot pile up in memory;
    - a failed write stops the run at the next checkpoint call, naming the file.

    Lightning's class submits removals synchronously (the old best goes before the new one is
    on disk), lets the queue grow without bound and re-raises a bare error: hence the wrapper.
    """

    def __init__(self, checkpoint_io: CheckpointIO | None = None, max_pending: int = 2) -> None:
        super().__init__(checkpoint_io or AtomicCheckpointIO())
        self.max_pending = max_pending
        self._pending: deque[tuple[str, Future, bool]] = deque()  # (action, its future, a write?)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        self._wait(writes_kept=self.max_pending - 1)
        self._submit(f"write checkpoint {path}", True, self.checkpoint_io.save_checkpoint, snapshot(checkpoint), path, storage_options)

    def remove_checkpoint(self, path: str | Path) -> None:
        self._submit(f"remove checkpoint {path}", False, self.checkpoint_io.remove_checkpoint, path)

    def load_checkpoint(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._wait()
        return self.checkpoint_io.load_checkpoint(*args, **kwargs)

    def flush(self) -> None:
        """Wait until every queued write and removal is on disk (a requeue waits for this)."""
        self._wait()

    def teardown(self) -> None:
        try:
            self._wait()
        finally:
            super().teardown()

    def _submit(self, action: str, write: bool, function: Any, *args: Any) -> None:
        self._ensure_setup()
        self._pending.append((action, self._executor.submit(function, *args), write))

    def _wait(self, writes_kept: int = 0) -> None:
        """Wait until at most ``writes_kept`` writes are queued (0: until nothing is), collecting
        whatever has finished; the first operation that failed raises."""

        def busy() -> bool:
            writes = sum(write for *_, write in self._pending)
            return writes > writes_kept or (writes_kept == 0 and bool(self._pending)) or self._pending[0][1].done()

        while self._pending and busy():
            action, future, _ = self._pending.popleft()
            error = future.exception()
            if error is not None:
                self._pending.clear()
                raise CheckpointWriteError(
                    f"could not {action}: {error}. Free space or fix the permissions of its directory; "
                    "the checkpoint before it is intact, so `ckpt_path=<run dir>` resumes from there."
                ) from error
