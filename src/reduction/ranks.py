"""The reduction's work split across DDP ranks, and the shares put back together, through
Lightning's strategy (``all_gather``, ``broadcast``, ``reduce_boolean_decision``).

Each split keeps a one-process run's numbers: relevance batch b goes to rank b % world (every batch
holds the images it holds in one process), and the fill's chunks are cut from contiguous shares.
With one process every exchange returns its input. The research (which pixels are kept, how
they are filled) is in ``round.py``; nothing here knows what the tensors mean.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.strategies import Strategy


@dataclass(frozen=True)
class Ranks:
    """This process's place among the run's ranks, and the exchanges between them on ``device``
    (the model's: NCCL exchanges CUDA tensors only)."""

    strategy: Strategy
    rank: int
    world: int
    device: torch.device

    @classmethod
    def of(cls, trainer: L.Trainer, device: torch.device) -> Ranks:
        return cls(trainer.strategy, trainer.global_rank, trainer.world_size, device)

    # ---- the splits ---------------------------------------------------------------------
    def batch_starts(self, n: int, batch_size: int) -> list[int]:
        """The first image of each of this rank's batches: batch b goes to rank b % world."""
        return batch_starts(n, batch_size, self.rank, self.world)

    def chunks(self, n: int, chunk: int) -> Iterator[list[tuple[int, int]]]:
        """Rank r's share is the r-th contiguous ceil(n / world) images; step s yields, for every
        rank, the [start, stop) of the s-th ``chunk`` images of its share (empty past its end)."""
        share = math.ceil(n / self.world)
        for step in range(math.ceil(share / chunk)):
            yield [(r * share + step * chunk, min(r * share + step * chunk + chunk, (r + 1) * share, n)) for r in range(self.world)]

    # ---- the distributed maps -------------------------------------------------------------
    def map_batches(
        self, n: int, batch_size: int, compute: Callable[[list[int]], tuple[torch.Tensor, Sequence[torch.Tensor]]], stage: str
    ) -> tuple[list[torch.Tensor], str]:
        """``compute(starts)`` on this rank's batches of ``batch_size`` of the n images (batch b on
        rank b % world) returns (image ids, rows per part); every rank gets every rank's rows, in
        image order 0..n-1, and the digest of the first part, checked equal on every rank. A
        failure on any rank stops every rank (``stage`` names it)."""
        failure: BaseException | None = None
        try:
            ids, parts = compute(self.batch_starts(n, batch_size))
        except Exception as error:  # re-raised below, after telling the other ranks
            failure = error
        self.raise_if_any_failed(failure, stage)
        per_rank = math.ceil(math.ceil(n / batch_size) / self.world) * batch_size
        gathered = self.gather_by_index(ids, list(parts), n, per_rank)
        digest = _digest(gathered[0])
        self.check_agree(digest, f"results of {stage}")
        return gathered, digest

    def map_chunks(self, out: torch.Tensor, chunk: int, compute: Callable[[int, int], torch.Tensor], stage: str, done: Callable[[int], None]) -> str | None:
        """``out[start:stop] = compute(start, stop)`` over this rank's contiguous share, ``chunk``
        rows at a time, every rank's rows placed into ``out`` on every rank (``done`` is told each
        step's rows); with several ranks, returns the digest of ``out``, checked equal on every
        rank (one process has nothing to compare: None, and no hash of the whole set)."""
        for bounds in self.chunks(len(out), chunk):
            start, stop = bounds[self.rank]
            part = out[:0].to(self.device)
            failure: BaseException | None = None
            if stop > start:
                try:
                    part = compute(start, stop)
                except Exception as error:  # re-raised below, after telling the other ranks
                    failure = error
            self.raise_if_any_failed(failure, stage)
            self.place(part, bounds, chunk, out)
            done(max(0, stop - start))
        if self.world == 1:
            return None
        digest = _digest(out)
        self.check_agree(digest, f"results of {stage}")
        return digest

    # ---- the exchanges ------------------------------------------------------------------
    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's ``tensor`` (same shape on all) stacked along dim 0, on the CPU."""
        gathered = self.strategy.all_gather(tensor.to(self.device))
        return gathered.reshape(-1, *tensor.shape[1:]).cpu()  # all_gather adds a world dim only under DDP

    def gather_by_index(self, ids: torch.Tensor, parts: list[torch.Tensor], n: int, length: int) -> list[torch.Tensor]:
        """``parts`` (rows for the images ``ids``, at most ``length`` on any rank) of every rank,
        in image order 0..n-1: the same on every rank."""
        every_id = self.gather(padded(ids, length, -1))
        present = every_id >= 0
        order = every_id[present].argsort()
        if len(order) != n:
            raise RuntimeError(f"reduction gathered {len(order)} rows for {n} training images")
        return [self.gather(padded(part, length, 0))[present][order] for part in parts]

    def place(self, part: torch.Tensor, bounds: list[tuple[int, int]], chunk: int, out: torch.Tensor) -> None:
        """Every rank's ``part`` (its rows ``bounds[rank]``, at most ``chunk``) written into ``out``."""
        every = self.gather(padded(part, chunk, 0))
        for r, (begin, end) in enumerate(bounds):
            if end > begin:
                out[begin:end] = every[r * chunk : r * chunk + end - begin]

    # ---- agreeing -----------------------------------------------------------------------
    def raise_if_any_failed(self, failure: BaseException | None, stage: str) -> None:
        """Every rank learns whether any rank failed its share, so all stop together instead of
        the healthy ones waiting forever for the failed one's; the failed rank raises its own
        error, the others name it."""
        failed = self.gather(torch.tensor([[failure is not None]], dtype=torch.uint8)).flatten().nonzero().flatten().tolist()
        if failure is not None:
            raise failure
        if failed:
            raise RuntimeError(f"reduction round stopped: rank(s) {', '.join(map(str, failed))} failed in {stage} (their error is in their log)")

    def check_agree(self, digest: str, what: str) -> None:
        """Raise on every rank unless all ranks computed the same ``digest`` (rank 0's)."""
        same = self.strategy.broadcast(digest, src=0) == digest
        if not self.strategy.reduce_boolean_decision(same, all=True):
            raise RuntimeError(f"reduction {what} differ between ranks; the reduced training sets would diverge")


def _digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.cpu().numpy().tobytes()).hexdigest()


def batch_starts(n: int, batch_size: int, rank: int, world: int) -> list[int]:
    """The first image of each relevance batch of ``rank``: batch b goes to rank b % world."""
    return list(range(0, n, batch_size))[rank::world]


def padded(tensor: torch.Tensor, length: int, value: float) -> torch.Tensor:
    """``tensor`` with rows of ``value`` appended up to ``length`` (all_gather needs one shape)."""
    pad = torch.full((length - len(tensor), *tensor.shape[1:]), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([tensor, pad])
