"""Iterative saliency-based reduction of the training set (docs/background.md), as a callback.

One fit of ``rounds * epochs_per_round`` epochs. At the end of every round the callback computes
a relevance map for every training image (eval mode, un-augmented images, batched), keeps the
most relevant pixels of each, fills the rest and swaps the reduced images into the training set
(validation and test data are never touched). The next round trains on that set.

Acronyms of the removal literature used here: ROAR, RemOve And Retrain (Hooker et al., NeurIPS
2019: remove the most relevant pixels, retrain, compare with random removal); KAR, Keep And
Retrain (its mirror: keep the most relevant pixels, as the original study does); ROAD, RemOve And
Debias (Rong et al., ICML 2022: fill removed pixels by noisy linear imputation, so the fill's
edge does not give the mask away).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import lightning as L
import torch

from src.callbacks.progress import WorkProgress, print_epoch_line_now
from src.callbacks.rounds import TrainingInRounds
from src.config.errors import UserInputError
from src.config.schemas import check_values
from src.config.schemas.reduction import CUE_ORACLE, ORACLE, SaliencyReductionSchema
from src.data.contract import experiment_data
from src.data.segmentation_dataset import SegmentationTensors
from src.models.segmentation import SegmentationModule
from src.reduction import packed, round_outputs
from src.reduction.preconditions import check_can_reduce, check_same_network
from src.reduction.ranks import Ranks
from src.reduction.relevance import RelevanceConfig
from src.reduction.removal_measures import KnownCue
from src.reduction.round import FILL_CHUNK, filled, ignoring_removed, oracle_masks, reinitialise, removal_measures, shard_masks
from src.seeding import REINIT_STREAM, SMOOTHGRAD_STREAM, round_seed
from src.storage.checkpoints import read_checkpoint, trained_checkpoint

log = logging.getLogger(__name__)


class SaliencyReduction(TrainingInRounds):
    """The reduction between a fit's rounds (the module's doc). Its arguments are the fields of
    :class:`~src.config.schemas.reduction.SaliencyReductionSchema`, each documented there (the
    config's ``reduction`` group; ``with_defaults(SaliencyReduction, ...)`` builds one in code)."""

    def __init__(self, **settings: Any) -> None:
        missing = sorted(f.name for f in fields(SaliencyReductionSchema) if not f.name.startswith("_") and f.name not in settings)
        if missing:
            raise TypeError(f"SaliencyReduction needs {', '.join(missing)} (with_defaults(SaliencyReduction, ...) fills in the schema's defaults)")
        # the ranges and choices are the config's (src/config/schemas), checked here too for a callback built in code
        check_values("reduction", settings, SaliencyReductionSchema)
        self.settings = s = SaliencyReductionSchema(**settings)
        if s.rounds < 1:
            raise UserInputError(f"reduction.rounds={s.rounds} builds no reduction; use reduction=none (or rounds=0 in a config) to train once.")
        self.rounds, self.epochs_per_round = s.rounds, s.epochs_per_round
        self.relevance = RelevanceConfig(
            s.method, s.background_class, s.ig_steps, s.smoothgrad_samples, s.smoothgrad_stdev, s.seed, s.smooth_scale, s.oracle_margin, s.randomised_model
        )
        self.output_dir = Path(s.output_dir)
        self.maps_from = None if s.maps_from is None else trained_checkpoint(s.maps_from)
        # state saved with every checkpoint
        self.rounds_done = 0
        self.masks: torch.Tensor | None = None
        self.history: list[dict[str, Any]] = []
        self.initialised_round = 1  # the round whose initial weights the model was given
        self._original: torch.Tensor | None = None
        self._original_targets: torch.Tensor | None = None
        self._training_cue: tuple[torch.Tensor, torch.Tensor] | None = None
        self._first_relevance: torch.Tensor | None = None  # this round's maps of the first images (rank 0's examples.png)
        self._ignore_index: int | None = None
        self._round_started = 0.0
        # called on every rank after each batch of a relevance pass with the batch's image count:
        # a hook for a progress display or a test's fault injection (tests/reliability/killpoints.py);
        # an exception raised in one fails the pass on that rank as a relevance error would
        self.relevance_listeners: list[Callable[[L.Trainer, int], None]] = []

    # ---- checks before any training -------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # the reduction owns the run's length: rounds x epochs_per_round epochs
        length = self.rounds * self.epochs_per_round
        if trainer.max_epochs != length:
            log.info("reduction: %d rounds x %d epochs = %d epochs (trainer.max_epochs=%s)", self.rounds, self.epochs_per_round, length, trainer.max_epochs)
            trainer.fit_loop.max_epochs = length
        datamodule = experiment_data(trainer.datamodule)
        check_can_reduce(datamodule, pl_module, self.relevance.method, self.relevance.background_class, self.settings.removed)
        if self.relevance.method == CUE_ORACLE:
            assert isinstance(datamodule, KnownCue)
            self._training_cue = datamodule.training_cue()
        if self.settings.removed == "ignore":
            self._ignore_index = pl_module.hparams["ignore_index"]
        if self.maps_from is not None:
            check_same_network(self.maps_from, pl_module)
        # workers hold copies of the dataset: rebuild the loader when a round's images change
        trainer.reload_dataloaders_every_n_epochs = self.epochs_per_round

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dataset: SegmentationTensors = trainer.datamodule.train_set
        self._original = dataset.images.clone()
        self._original_targets = dataset.masks.clone()
        if self.masks is not None:  # resumed: train on the reduced set of the checkpoint
            self._swap_in(trainer, pl_module, dataset, self.masks)
        self._round_started = time.perf_counter()
        if self.maps_from is not None and self.rounds_done == 0:
            self._reduce_with_trained_model(trainer, pl_module)
        # a checkpoint written at a round's last epoch predates that round's reduction: redo it
        elif self.rounds_done < min(trainer.current_epoch // self.epochs_per_round, self.rounds):
            self._reduce(trainer, pl_module, fit_seconds=math.nan)

    def _reduce_with_trained_model(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The first reduction, with the ``maps_from`` model's maps; then the run's own initial
        weights are put back (the optimizer has taken no step yet)."""
        assert self.maps_from is not None
        initial = {k: v.clone() for k, v in pl_module.state_dict().items()}
        pl_module.load_state_dict(read_checkpoint(self.maps_from)["state_dict"])
        log.info("reduction round 1: maps from %s, before training", self.maps_from)
        try:
            self._reduce(trainer, pl_module, fit_seconds=0.0)
        finally:
            pl_module.load_state_dict(initial)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a new round's fresh weights are drawn here, not at the previous round's end, where the
        # checkpoints of that epoch are written after this callback and would hold them
        round_ = trainer.current_epoch // self.epochs_per_round + 1
        if self.settings.reinit and 1 < round_ <= self.rounds and self.initialised_round < round_:
            reinitialise(pl_module, trainer.optimizers, seed=round_seed(self.settings.seed, round_, REINIT_STREAM))
            self.initialised_round = round_

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.epochs_per_round == 0 and self.rounds_done < self.rounds:
            if isinstance(pl_module, SegmentationModule):
                print_epoch_line_now(trainer, pl_module, pl_module.log_train_metrics)
            self._reduce(trainer, pl_module, fit_seconds=time.perf_counter() - self._round_started)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.history:
            round_outputs.print_rounds(self.history)
            round_outputs.log_rounds_table(trainer.loggers, self.history)

    # ---- one reduction ------------------------------------------------------------------
    def _reduce(self, trainer: L.Trainer, pl_module: L.LightningModule, fit_seconds: float) -> None:
        started = time.perf_counter()
        ranks = Ranks.of(trainer, pl_module.device)
        dataset: SegmentationTensors = trainer.datamodule.train_set
        # an image smaller than the canvas it shares with larger ones has only its own pixels
        valid = dataset.valid_pixels()
        present = self.masks if self.settings.cumulative and self.masks is not None else valid
        source = dataset.images if self.settings.cumulative else self._images
        (masks, measures), digest = self._masks(trainer, pl_module, ranks, source, present)
        log.info("reduction round %d: masks sha256 %s (rank %d of %d)", self.rounds_done + 1, digest, ranks.rank, ranks.world)
        s, r = self.settings, self.relevance
        oracle = None  # the reference: what a perfect map keeps (keep=most), whatever this arm's keep is
        if not (r.method == ORACLE and s.keep == "most"):
            oracle = oracle_masks(self._targets, present, s.percentile, s.seed, self.rounds_done, r.oracle_margin, r.background_class)
        relevance_seconds = time.perf_counter() - started

        self.masks = masks
        self.rounds_done += 1  # before the fill: a resumed run refills with the same count
        filled_at = time.perf_counter()
        images = self._filled(trainer, ranks, masks)
        swapped_at = time.perf_counter()
        self._replace(dataset, images, masks)
        seconds = {"relevance_seconds": relevance_seconds, "fill_seconds": swapped_at - filled_at, "swap_seconds": time.perf_counter() - swapped_at}
        fill_seconds, swap_seconds = seconds["fill_seconds"], seconds["swap_seconds"]
        log.info("reduction round %d: relevance %.1f s, fill (%s) %.1f s, swap %.1f s", self.rounds_done, relevance_seconds, s.fill, fill_seconds, swap_seconds)
        cue = self._known_cue(trainer.datamodule)
        self.history.append(
            {
                "round": self.rounds_done,
                **{k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("val/")},
                "mean_spatial_entropy": measures[:, 0].mean().item(),
                "mean_moment_of_inertia": measures[:, 1].mean().item(),
                **removal_measures(masks, valid, oracle, self._targets, self.relevance.background_class, cue, images),
                "fit_seconds": fit_seconds,
                **seconds,
                "masks_sha256": digest[:16],
            }
        )
        if trainer.is_global_zero:
            round_outputs.write_round(
                self.output_dir, self.history, masks, self._first_relevance, self._images, self._targets, dataset.images,
                self.settings.examples, self.relevance.method, trainer.loggers, trainer.global_step,
            )  # fmt: skip
        self._round_started = time.perf_counter()

    @property
    def _images(self) -> torch.Tensor:
        assert self._original is not None, "on_train_start keeps the original images"
        return self._original

    @property
    def _targets(self) -> torch.Tensor:
        assert self._original_targets is not None, "on_train_start keeps the original targets"
        return self._original_targets

    def _known_cue(self, datamodule: object) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The training set's cue on a set that knows it (the same original images every round: drawn once)."""
        if self._training_cue is None and isinstance(datamodule, KnownCue):
            self._training_cue = datamodule.training_cue()
        return self._training_cue

    def _swap_in(self, trainer: L.Trainer, pl_module: L.LightningModule, dataset: SegmentationTensors, masks: torch.Tensor) -> None:
        self._replace(dataset, self._filled(trainer, Ranks.of(trainer, pl_module.device), masks), masks)

    def _replace(self, dataset: SegmentationTensors, images: torch.Tensor, masks: torch.Tensor) -> None:
        """The reduced training set: filled images and, with removed=ignore, targets whose
        removed pixels are the ignore index."""
        dataset.replace_images(images)
        if self.settings.removed == "ignore":
            assert self._ignore_index is not None
            dataset.replace_masks(ignoring_removed(self._targets, masks, self._ignore_index))

    def _filled(self, trainer: L.Trainer, ranks: Ranks, masks: torch.Tensor) -> torch.Tensor:
        """The original images with the removed pixels filled, each rank its share on the model's
        device, every rank ending with the whole set (:meth:`Ranks.map_chunks`), equal to a
        one-process fill (image i's impute noise is drawn from the seed, the reductions done and i)."""
        original, n = self._images, len(self._images)
        valid = trainer.datamodule.train_set.valid_pixels()  # on a shared canvas, impute solves each image's own pixels
        share = math.ceil(n / ranks.world)
        description = f"reduction round {self.rounds_done}: {self.settings.fill} fill" + (f" of {share} of {n} images on each rank" if ranks.world > 1 else "")
        progress = WorkProgress(description, min(share, n), shown=trainer.is_global_zero, logger=log)
        seed = (self.settings.seed, self.rounds_done)
        out = torch.empty_like(original)
        try:
            digest = ranks.map_chunks(
                out,
                FILL_CHUNK,
                lambda start, stop: filled(original, masks, valid, start, stop, self.settings.fill, seed, self.settings.impute_noise, ranks.device),
                "the fill",
                progress.advance,
            )
        finally:
            progress.close()
        if digest is not None:
            log.info("reduction round %d: images sha256 %s (rank %d of %d)", self.rounds_done, digest, ranks.rank, ranks.world)
        return out

    def _relevance_batch_done(self, trainer: L.Trainer, progress: WorkProgress, images: int) -> None:
        progress.advance(images)
        for listener in self.relevance_listeners:
            listener(trainer, images)

    def _masks(
        self, trainer: L.Trainer, pl_module: L.LightningModule, ranks: Ranks, images: torch.Tensor, present: torch.Tensor
    ) -> tuple[list[torch.Tensor], str]:
        """The keep-masks (bool) and each map's (entropy, inertia) of every training image, each
        rank computing its relevance batches (:func:`shard_masks`), every rank ending with all."""
        n = len(images)
        mine = sum(min(self.settings.batch_size, n - start) for start in ranks.batch_starts(n, self.settings.batch_size))
        progress = WorkProgress(f"reduction round {self.rounds_done + 1}: relevance ({self.relevance.method})", mine, shown=trainer.is_global_zero, logger=log)
        cue = (self._training_cue[1] != 0).any(1) if self.relevance.method == CUE_ORACLE and self._training_cue is not None else None

        def compute(starts: list[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
            shard = shard_masks(
                pl_module, images, present, self.settings.percentile, self.relevance, self.settings.batch_size, starts, self.settings.examples, self.settings.keep, self.rounds_done,
                self._targets, lambda count: self._relevance_batch_done(trainer, progress, count), cue,
            )  # fmt: skip
            self._first_relevance = shard.first_relevance
            return shard.ids, [shard.masks.to(torch.uint8), torch.stack([shard.entropy, shard.inertia], 1)]

        devices = [pl_module.device.index or 0] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            # smoothgrad's noise: the same after a resume, another for another seed
            torch.manual_seed(round_seed(self.settings.seed, self.rounds_done + 1, SMOOTHGRAD_STREAM))
            try:
                (masks, measures), digest = ranks.map_batches(n, self.settings.batch_size, compute, "the relevance pass")
            finally:
                progress.close()
        return [masks.bool(), measures], digest

    # ---- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # one bit per pixel: a checkpoint of a large set holds the masks at 1/8 of their bool size
        return {
            "rounds_done": self.rounds_done,
            "masks": None if self.masks is None else packed.pack(self.masks),
            "history": self.history,
            "initialised_round": self.initialised_round,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rounds_done = state_dict["rounds_done"]
        self.masks = None if state_dict["masks"] is None else packed.unpack(state_dict["masks"])
        self.history = list(state_dict["history"])
        # a checkpoint from before this key: its round's weights were drawn at the round's end
        self.initialised_round = state_dict.get("initialised_round", self.rounds_done + 1)
