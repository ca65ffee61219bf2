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

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from src.callbacks.progress import WorkProgress, print_epoch_line_now
from src.config.errors import UserInputError
from src.config.schemas import check_values
from src.config.schemas.reduction import CUE_ORACLE, ORACLE, SaliencyReductionSchema
from src.data.contract import experiment_data
from src.data.segmentation_dataset import SegmentationTensors, to_unit
from src.loggers.figures import save_figure
from src.models.segmentation import SegmentationModule
from src.reduction import packed, round_outputs
from src.reduction.masking import fill_stored, keep_mask
from src.reduction.ranks import Ranks, batch_starts
from src.reduction.relevance import RelevanceConfig, oracle_relevance, relevance_maps
from src.reduction.removal_measures import KnownCue, cue_share, keep_iou, object_recall
from src.saliency.measures import moment_of_inertia, spatial_entropy
from src.seeding import REINIT_STREAM, SMOOTHGRAD_STREAM, round_seed
from src.storage.checkpoints import read_checkpoint, trained_checkpoint

log = logging.getLogger(__name__)
# images filled (and exchanged between ranks) at a time: a uint8 set is never held as float all at once
FILL_CHUNK = 256


class SaliencyReduction(Callback):
    """Args:
    rounds: number of train-then-reduce rounds (the original study: 7).
    epochs_per_round: epochs trained between reductions (config default: trainer.max_epochs //
        rounds); the fit lasts rounds x epochs_per_round epochs.
    percentile: p in (0, 100]: each round keeps ceil(p/100 * n) of the n pixels still present
        in an image (ties: first pixel in row-major order wins); cumulative rounds keep (p/100)^r.
    cumulative: a removed pixel stays removed and relevance is computed on the reduced image;
        False recomputes on the original images and replaces the mask each round.
    fill: what removed pixels become: zero (the original study) | mean | blur | impute (ROAD's noisy
        linear imputation: no edge at the mask's border).
    method: prediction (the original study) | gradient | integrated_gradients | smoothgrad | gradcam, or
        a control that knows nothing of the task: random (uniform per pixel) | random_smooth
        (a Gaussian-smoothed random field, blob-shaped like Grad-CAM's maps).
    keep: most (the original study) | least: keep the least relevant pixels (ROAR's direction; a map
        that carries task information must hurt more than random there).
    seed: the run's seed: the random controls', the impute noise's and smoothgrad's draws come
        from (seed, round, image), and reinit's weights from (seed, round).
    smooth_scale: random_smooth's sigma as a fraction of the image's shorter side.
    impute_noise: the impute fill's noise (standard deviation, images in [0, 1]).
    oracle_margin: method=oracle (a positive control: relevance from the ground truth) ranks
        every object pixel, dilated by this many pixels, first, then the rest by distance to
        the object. Every round also logs the IoU of its keep-masks with the oracle's
        (``oracle_keep_iou``) and, on a set that knows its cue, the share of the cue left
        (``cue_share``): model-free measures of what the map removed.
    removed: what the loss makes of removed pixels: label (the original study: they keep their label,
        so the model learns that fill means background) | ignore (they become the model's
        ``ignore_index`` in the training targets: no loss, no training metric; validation and
        test are unchanged).
    background_class: the class whose probability is not relevance (multi-class outputs).
    maps_from: a checkpoint, or a finished run's dir (its best checkpoint): the first reduction
        is made before any training, with that checkpoint's model (a trained baseline), and the
        run then trains from its own fresh weights on the reduced set. ROAR's one-round protocol:
        with ``rounds=1`` every arm that starts from the same baseline differs only in its maps.
        None: the first reduction follows round 1 of this run.
    reinit: re-initialise the weights (and optimizer state) at the start of every new round (at
        its first epoch's start, so the previous round's checkpoints hold its trained weights),
        drawn from (seed, round): two seeds never share a round's initial weights.
    batch_size: images per relevance batch.
    examples: training images shown in each round's examples.png.
    output_dir: where reduction/ outputs go (rank 0 writes them).
    """

    def __init__(
        self,
        rounds: int,
        epochs_per_round: int,
        percentile: float,
        cumulative: bool,
        fill: str,
        method: str,
        randomised_model: bool,
        keep: str,
        background_class: int,
        reinit: bool,
        batch_size: int,
        examples: int,
        ig_steps: int,
        smoothgrad_samples: int,
        smoothgrad_stdev: float,
        seed: int,
        smooth_scale: float,
        impute_noise: float,
        oracle_margin: int,
        removed: str,
        output_dir: str,
        maps_from: str | None,
    ) -> None:
        # the ranges and choices are the config's (src/config/schemas), checked here too for a callback built in code
        check_values("reduction", {k: v for k, v in locals().items() if k != "self"}, SaliencyReductionSchema)
        if rounds < 1:
            raise UserInputError(f"reduction.rounds={rounds} builds no reduction; use reduction=none (or rounds=0 in a config) to train once.")
        self.rounds, self.epochs_per_round = rounds, epochs_per_round
        self.percentile, self.cumulative, self.fill = percentile, cumulative, fill
        self.reinit, self.batch_size, self.examples = reinit, batch_size, examples
        self.keep, self.seed, self.impute_noise, self.removed = keep, seed, impute_noise, removed
        self.relevance = RelevanceConfig(
            method, background_class, ig_steps, smoothgrad_samples, smoothgrad_stdev, seed, smooth_scale, oracle_margin, randomised_model
        )
        self.output_dir = Path(output_dir)
        self.maps_from = None if maps_from is None else trained_checkpoint(maps_from)
        # state saved with every checkpoint
        self.rounds_done = 0
        self.masks: torch.Tensor | None = None
        self.history: list[dict[str, Any]] = []
        self.initialised_round = 1  # the round whose initial weights the model was given
        self._original: torch.Tensor | None = None
        self._original_targets: torch.Tensor | None = None
        self._training_cue: tuple[torch.Tensor, torch.Tensor] | None = None
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
        if not hasattr(pl_module, "probabilities"):
            raise UserInputError(f"reduction needs a segmentation model with per-pixel class outputs; {type(pl_module).__name__} has none.")
        out_channels = pl_module.hparams.get("out_channels", 1)
        if out_channels > 1 and not 0 <= self.relevance.background_class < out_channels:
            raise UserInputError(f"reduction.background_class={self.relevance.background_class} is not a class of this model (0..{out_channels - 1}).")
        datamodule = experiment_data(trainer.datamodule)
        if self.relevance.method == CUE_ORACLE:
            if not isinstance(datamodule, KnownCue):
                raise UserInputError("reduction.method=cue_oracle ranks a known cue's pixels last: use a data set that knows its cue (data=shortcut).")
            self._training_cue = datamodule.training_cue()
        if datamodule.streamed:
            raise UserInputError(
                "reduction keeps the reduced training set in memory, but this folder set is larger than data.memory_limit_mb "
                "and is read from disk; raise data.memory_limit_mb (the log gives the set's size), set data.image_size, or reduction=none."
            )
        if not isinstance(datamodule.train_set, SegmentationTensors):
            raise UserInputError(
                "reduction needs a data module whose training set can be replaced (a `train_set` "
                f"SegmentationTensors); {type(trainer.datamodule).__name__} has none."
            )
        if self.removed == "ignore":
            self._ignore_index = pl_module.hparams.get("ignore_index")
            if self._ignore_index is None:
                raise UserInputError(
                    "reduction.removed=ignore needs a model whose loss skips an ignore_index; build it through src.train "
                    "(which sets one), or pass ignore_index to the model."
                )
        if self.maps_from is not None:
            _check_same_network(self.maps_from, pl_module)
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
        if self.reinit and 1 < round_ <= self.rounds and self.initialised_round < round_:
            _reinitialise(trainer, pl_module, seed=round_seed(self.seed, round_, REINIT_STREAM))
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
        dataset: SegmentationTensors = trainer.datamodule.train_set
        # an image smaller than the canvas it shares with larger ones has only its own pixels
        valid = dataset.valid_pixels()
        present = self.masks if self.cumulative and self.masks is not None else valid
        source = dataset.images if self.cumulative else self._original
        masks, entropy, inertia, example_relevance = self._sharded_masks(trainer, pl_module, source, present)
        # the reference is what a perfect map keeps (keep=most), whatever this arm's keep is
        oracle_iou = 1.0 if self.relevance.method == ORACLE and self.keep == "most" else keep_iou(masks, self._oracle_masks(present)).mean().item()
        digest = hashlib.sha256(masks.numpy().tobytes()).hexdigest()
        Ranks.of(trainer, pl_module.device).check_agree(digest, "masks")
        log.info("reduction round %d: masks sha256 %s (rank %d of %d)", self.rounds_done + 1, digest, trainer.global_rank, trainer.world_size)
        relevance_seconds = time.perf_counter() - started

        self.masks = masks
        self.rounds_done += 1  # before the fill: a resumed run refills with the same count
        filled_at = time.perf_counter()
        images = self._filled(trainer, pl_module, masks)
        swapped_at = time.perf_counter()
        self._replace(dataset, images, masks)
        seconds = {"relevance_seconds": relevance_seconds, "fill_seconds": swapped_at - filled_at, "swap_seconds": time.perf_counter() - swapped_at}
        log.info(
            "reduction round %d: relevance %.1f s, fill (%s) %.1f s, swap %.1f s",
            self.rounds_done,
            relevance_seconds,
            self.fill,
            seconds["fill_seconds"],
            seconds["swap_seconds"],
        )
        row: dict[str, Any] = {
            "round": self.rounds_done,
            "kept_fraction": (masks.flatten(1).sum(1) / valid.flatten(1).sum(1)).mean().item(),
            **{k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("val/")},
            "mean_spatial_entropy": entropy.mean().item(),
            "mean_moment_of_inertia": inertia.mean().item(),
            "oracle_keep_iou": oracle_iou,
            "object_recall": self._object_recall(masks),
            **({"cue_share": self._cue_share(trainer.datamodule, images)} if isinstance(trainer.datamodule, KnownCue) else {}),
            "fit_seconds": fit_seconds,
            **seconds,
            "masks_sha256": digest[:16],
        }
        self.history.append(row)
        if trainer.is_global_zero:
            self._write_round(trainer, row, masks, example_relevance, dataset)
        self._round_started = time.perf_counter()

    def _oracle_masks(self, present: torch.Tensor) -> torch.Tensor:
        """What the oracle would keep (keep=most) of the ``present`` pixels this round (its ties included)."""
        assert self._original_targets is not None
        parts = []
        for start in range(0, len(present), FILL_CHUNK):
            ids = torch.arange(start, min(start + FILL_CHUNK, len(present)))
            relevance = oracle_relevance(
                self._original_targets[ids], ids, self.seed, self.rounds_done, self.relevance.oracle_margin, self.relevance.background_class
            )
            parts.append(keep_mask(relevance, present[ids], self.percentile))
        return torch.cat(parts)

    def _cue_pixels(self) -> torch.Tensor:
        """(N, H, W) bool: where the data set put its cue into each training image (read in setup)."""
        assert self._training_cue is not None
        return (self._training_cue[1] != 0).any(1)

    def _object_recall(self, masks: torch.Tensor) -> float:
        assert self._original_targets is not None
        return object_recall(masks, self._original_targets, self.relevance.background_class).nanmean().item()

    def _cue_share(self, datamodule: KnownCue, images: torch.Tensor) -> float:
        if self._training_cue is None:  # the same original images every round: drawn once
            self._training_cue = datamodule.training_cue()
        return cue_share(to_unit(images), *self._training_cue).nanmean().item()

    def _swap_in(self, trainer: L.Trainer, pl_module: L.LightningModule, dataset: SegmentationTensors, masks: torch.Tensor) -> None:
        self._replace(dataset, self._filled(trainer, pl_module, masks), masks)

    def _replace(self, dataset: SegmentationTensors, images: torch.Tensor, masks: torch.Tensor) -> None:
        """The reduced training set: filled images and, with removed=ignore, targets whose
        removed pixels are the ignore index."""
        dataset.replace_images(images)
        if self.removed == "ignore":
            dataset.replace_masks(ignoring_removed(self._original_targets, masks, self._ignore_index))

    def _filled(self, trainer: L.Trainer, pl_module: L.LightningModule, masks: torch.Tensor) -> torch.Tensor:
        """The original images with the removed pixels filled: each rank fills its share, on the
        model's device, and the shares are exchanged, so every rank holds the whole set, equal
        to a one-process fill (the impute noise of image i is drawn from the seed, the
        reductions done and i, so it is the same after a resume and on any rank)."""
        ranks = Ranks.of(trainer, pl_module.device)
        n = len(self._original)
        valid = trainer.datamodule.train_set.valid_pixels()  # on a shared canvas, impute solves each image's own pixels
        share = math.ceil(n / ranks.world)
        out = torch.empty_like(self._original)
        description = f"reduction round {self.rounds_done}: {self.fill} fill" + (f" of {share} of {n} images on each rank" if ranks.world > 1 else "")
        progress = WorkProgress(description, min(share, n), shown=trainer.is_global_zero, logger=log)
        try:
            for bounds in ranks.chunks(n, FILL_CHUNK):
                start, stop = bounds[ranks.rank]
                part = torch.empty(0, *self._original.shape[1:], dtype=self._original.dtype, device=pl_module.device)
                failure = None
                if stop > start:
                    try:
                        part = fill_stored(
                            self._original[start:stop].to(pl_module.device),
                            masks[start:stop].to(pl_module.device),
                            self.fill,
                            noise_seed=(self.seed, self.rounds_done),
                            impute_noise=self.impute_noise,
                            first=start,
                            valid=valid[start:stop].to(pl_module.device),
                        )
                    except Exception as error:  # re-raised below, after telling the other ranks
                        failure = error
                ranks.raise_if_any_failed(failure, "the fill")
                ranks.place(part, bounds, FILL_CHUNK, out)
                progress.advance(max(0, stop - start))
        finally:
            progress.close()
        if ranks.world > 1:
            digest = hashlib.sha256(out.numpy().tobytes()).hexdigest()
            ranks.check_agree(digest, "filled images")
            log.info("reduction round %d: images sha256 %s (rank %d of %d)", self.rounds_done, digest, ranks.rank, ranks.world)
        return out

    def _relevance_batch_done(self, trainer: L.Trainer, progress: WorkProgress, images: int) -> None:
        progress.advance(images)
        for listener in self.relevance_listeners:
            listener(trainer, images)

    def _sharded_masks(
        self, trainer: L.Trainer, pl_module: L.LightningModule, images: torch.Tensor, present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Each rank computes the keep-masks of its relevance batches (:func:`shard_masks`), then
        the masks are exchanged: all ranks end with identical masks, equal to a one-process
        computation."""
        ranks = Ranks.of(trainer, pl_module.device)
        n = len(images)
        per_rank = math.ceil(math.ceil(n / self.batch_size) / ranks.world) * self.batch_size
        devices = [pl_module.device.index or 0] if pl_module.device.type == "cuda" else []
        failure: BaseException | None = None
        mine = sum(min(self.batch_size, n - start) for start in ranks.batch_starts(n, self.batch_size))
        description = f"reduction round {self.rounds_done + 1}: relevance ({self.relevance.method})"
        progress = WorkProgress(description, mine, shown=trainer.is_global_zero, logger=log)
        with torch.random.fork_rng(devices=devices):
            # smoothgrad's noise: the same after a resume, another for another seed
            torch.manual_seed(round_seed(self.seed, self.rounds_done + 1, SMOOTHGRAD_STREAM))
            try:
                shard = shard_masks(
                    pl_module,
                    images,
                    present,
                    self.percentile,
                    self.relevance,
                    self.batch_size,
                    rank=ranks.rank,
                    world=ranks.world,
                    keep_relevance=self.examples,
                    keep=self.keep,
                    round_=self.rounds_done,
                    targets=self._original_targets,
                    progress=lambda images: self._relevance_batch_done(trainer, progress, images),
                    cue=self._cue_pixels() if self.relevance.method == CUE_ORACLE else None,
                )
            except Exception as error:  # re-raised below, after telling the other ranks
                failure = error
            finally:
                progress.close()
        ranks.raise_if_any_failed(failure, "the relevance pass")
        masks, measures = ranks.gather_by_index(shard.ids, [shard.masks.to(torch.uint8), torch.stack([shard.entropy, shard.inertia], 1)], n, per_rank)
        return masks.bool(), measures[:, 0], measures[:, 1], shard.first_relevance

    def _write_round(self, trainer: L.Trainer, row: dict[str, Any], masks: torch.Tensor, relevance: torch.Tensor | None, dataset: SegmentationTensors) -> None:
        round_dir = self.output_dir / f"round_{self.rounds_done:02d}"
        round_outputs.write_masks(round_dir / "masks.npz", masks, torch.arange(len(masks)))
        round_outputs.write_rounds_csv(self.output_dir / "rounds.csv", self.history)
        # the examples come from the first relevance batch, which reduction.batch_size may make the smaller
        k = 0 if relevance is None else min(self.examples, len(masks), len(relevance))
        if k:
            figure = round_outputs.examples_figure(
                to_unit(self._original[:k]),
                self._original_targets[:k],
                relevance[:k],
                masks[:k],
                to_unit(dataset.images[:k]),
                title=f"round {self.rounds_done}: kept {row['kept_fraction']:.3f} of the pixels ({self.relevance.method})",
            )
            save_figure(figure, round_dir / "examples.png")
            round_outputs.log_round(trainer.loggers, row, round_dir / "examples.png", step=trainer.global_step)

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


@dataclass
class Shard:
    ids: torch.Tensor  # (M,) training-set indices
    masks: torch.Tensor  # (M, H, W) bool keep-masks
    entropy: torch.Tensor  # (M,) spatial entropy of each relevance map
    inertia: torch.Tensor  # (M,) moment of inertia of each relevance map
    first_relevance: torch.Tensor | None  # relevance of the first images (batch 0, rank 0)


def shard_masks(
    module: L.LightningModule,
    images: torch.Tensor,
    present: torch.Tensor,
    percentile: float,
    config: RelevanceConfig,
    batch_size: int,
    rank: int = 0,
    world: int = 1,
    keep_relevance: int = 0,
    keep: str = "most",
    round_: int = 0,
    targets: torch.Tensor | None = None,
    progress: Callable[[int], None] | None = None,
    cue: torch.Tensor | None = None,
) -> Shard:
    """Keep-masks for this rank's share of ``images``: relevance batch b goes to rank b % world,
    so each batch holds the same images as in a one-process run (identical numbers). ``targets``
    (the training set's ground truth) is read by the oracles alone, ``cue`` (the known cue's
    pixels) by the cue oracle; ``progress`` is told each batch's size once it is done."""
    n, _, height, width = images.shape
    ids, masks, entropy, inertia, first = [], [], [], [], None
    was_training = module.training
    module.eval()
    try:
        for start in batch_starts(n, batch_size, rank, world):
            batch_ids = torch.arange(start, min(start + batch_size, n))
            batch_targets = None if targets is None else targets[batch_ids].to(module.device)
            batch_cue = None if cue is None else cue[batch_ids]
            relevance = relevance_maps(module, to_unit(images[batch_ids]).to(module.device), config, batch_ids, round_, batch_targets, batch_cue).float().cpu()
            masks.append(keep_mask(relevance, present[batch_ids], percentile, keep))
            entropy.append(spatial_entropy(relevance))
            inertia.append(moment_of_inertia(relevance))
            ids.append(batch_ids)
            if start == 0:
                first = relevance[:keep_relevance]
            if progress is not None:
                progress(len(batch_ids))
    finally:
        module.train(was_training)
    if not ids:  # more ranks than batches
        return Shard(torch.empty(0, dtype=torch.long), torch.empty(0, height, width, dtype=torch.bool), torch.empty(0), torch.empty(0), None)
    return Shard(torch.cat(ids), torch.cat(masks), torch.cat(entropy), torch.cat(inertia), first)


def ignoring_removed(targets: torch.Tensor, keep: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """``targets`` ((N, H, W) classes or (N, 1, H, W) values) with every pixel outside ``keep``
    (N, H, W) set to ``ignore_index``."""
    keep = keep.unsqueeze(1) if targets.ndim == 4 else keep
    return torch.where(keep, targets, torch.full_like(targets, ignore_index))


def _check_same_network(checkpoint: Path, pl_module: L.LightningModule) -> None:
    """Refuse, before training, a ``maps_from`` checkpoint whose weights do not fit this model."""
    stored = read_checkpoint(checkpoint).get("state_dict", {})
    own = pl_module.state_dict()
    differ = sorted(k for k in set(stored) | set(own) if k not in stored or k not in own or stored[k].shape != own[k].shape)
    if differ:
        raise UserInputError(
            f"reduction.maps_from={checkpoint} holds another network than this run's ({len(differ)} weights differ, e.g. {differ[0]}); "
            "train the baseline with the same model and data settings, or point maps_from at its run."
        )


def _reinitialise(trainer: L.Trainer, pl_module: L.LightningModule, seed: int) -> None:
    """Fresh weights and optimizer state from ``seed``, so every DDP rank draws the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in pl_module.modules():
            if module is not pl_module and hasattr(module, "reset_parameters"):
                module.reset_parameters()
    for optimizer in trainer.optimizers:
        optimizer.state.clear()
