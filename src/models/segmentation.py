"""One LightningModule for segmentation, whatever the net."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from src.config.errors import UserInputError
from src.data.contract import experiment_data
from src.models.base import ConfiguredModule
from src.models.losses import WEIGHTED, build_loss, check_task, right_reasons_penalty
from src.models.metrics import SegmentationMetrics
from src.models.tiling import TILE_BORDER, window_logits
from src.storage.checkpoints import plain


class SegmentationModule(ConfiguredModule):
    """Trains any segmentation net (U-Net, FCN, smp) in one of three output modes.

    Args:
        net: Hydra config of the net (``_target_`` plus its arguments, without channels). Kept as
            config so a checkpoint rebuilds the whole model on its own (``load_from_checkpoint``).
        task: ``regression`` (one sigmoid channel, targets in [0, 1]; eliret), ``binary`` (one
            logit channel, BCE), or ``multiclass`` (softmax over ``out_channels``).
        in_channels: input channels, set from the data module.
        out_channels: output channels (1 for regression and binary), set from the data module.
        loss: ``mse`` | ``bce`` | ``ce`` | ``dice`` | ``dice+ce`` | ``dice+bce``; None picks the
            task's default (mse, bce, ce).
        optimizer: partial optimizer config (``_partial_: true``), given the parameters here.
        scheduler: partial LR-scheduler config, or empty for a constant rate; ReduceLROnPlateau
            watches ``monitor``.
        input_mean: per-channel mean subtracted inside ``forward``, so a checkpoint takes raw
            [0, 1] images.
        input_std: per-channel standard deviation divided by inside ``forward``.
        challenge_metrics: also report the ISBI Rand error and VI on val/test (membrane data).
        tta: evaluate (val/test) on the mean logits over the 8 flips/rotations of each image
            (4 flips for non-square images); training is unchanged.
        channels_last: run the net in the NHWC memory layout (tensor cores on GPUs prefer it).
        compile_net: run the net through ``torch.compile`` (the first steps compile it); the
            checkpoint keeps the plain net's weights.
        ignore_index: target value of unlabelled pixels, skipped by the loss and every metric
            (set from the data module).
        eval_window: validate and test on whole images in tiles of this side, through
            prediction's sliding-window path (set from the data module when it trains on crops).
        rrr_weight: lambda of the Right for the Right Reasons term (Ross et al. 2017) added to
            the training loss: the squared input gradient of the log-probabilities outside the
            ground-truth objects (:func:`~src.models.losses.right_reasons_penalty`); 0: off.
        rrr_margin: the objects are dilated by this many pixels before the term looks outside.
    """

    kind = "segmentation"

    def __init__(
        self,
        net: Mapping[str, Any],
        task: str,
        in_channels: int,
        out_channels: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None,
        loss: str | None,
        monitor: str,
        tta: bool,
        channels_last: bool,
        compile_net: bool,
        rrr_weight: float,
        rrr_margin: int,
        input_mean: Sequence[float] = (0.0,),
        input_std: Sequence[float] = (1.0,),
        challenge_metrics: bool = False,
        ignore_index: int | None = None,
        eval_window: int | None = None,
    ) -> None:
        super().__init__(input_mean, input_std)
        # plain containers, so checkpoints load with torch.load(weights_only=True)
        net, optimizer, scheduler = (plain(c) for c in (net, optimizer, scheduler))
        input_mean, input_std = list(input_mean), list(input_std)
        self.save_hyperparameters(logger=False)
        check_task(task, out_channels)
        self.loss_name, self.loss_fn = build_loss(loss, task, ignore_index)
        self.net: nn.Module = instantiate(net, in_channels=in_channels, out_channels=out_channels)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        # kept off the module's children, so state_dict and checkpoints hold the plain net's keys
        object.__setattr__(self, "_run_net", torch.compile(self.net) if compile_net else self.net)
        # training: acc, miou (and mse) only; per-image mIoU and Dice on val/test (`make bench`)
        self.train_metrics = SegmentationMetrics(task, out_channels, prefix="train/", overlap=False, ignore_index=ignore_index)
        self.val_metrics = SegmentationMetrics(task, out_channels, prefix="val/", challenge=challenge_metrics, ignore_index=ignore_index)
        self.test_metrics = SegmentationMetrics(task, out_channels, prefix="test/", challenge=challenge_metrics, ignore_index=ignore_index)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, out_channels, H, W) for raw images in [0, 1]."""
        return self._run_net(self.net_input(images))

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Sigmoid for one-channel tasks, softmax over classes otherwise."""
        return logits.softmax(1) if self.hparams.task == "multiclass" else torch.sigmoid(logits)

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits, averaged over flips/rotations when ``tta`` is on."""
        if not self.hparams.tta:
            return self(images)
        square = images.shape[-1] == images.shape[-2]
        total = torch.zeros((), device=images.device)
        count = 0
        for rotations in range(4 if square else 1):
            for flip in (False, True):
                x = torch.rot90(images, rotations, (2, 3))
                x = x.flip(3) if flip else x
                y = self(x)
                y = y.flip(3) if flip else y
                total = total + torch.rot90(y, -rotations, (2, 3))
                count += 1
        return total / count

    def evaluation_window(self) -> tuple[int | None, int]:
        """(tile side, mirrored border) of this model's own evaluation: tiles of ``eval_window``
        px over images mirrored by :data:`~src.models.tiling.TILE_BORDER` px for a net trained
        on crops; else the whole image as it is, as it trained (no border it never saw)."""
        window = self.hparams.get("eval_window")
        return (None, 0) if window is None else (window, TILE_BORDER)

    def evaluation_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The logits val, test and robustness score: :meth:`predict_logits` on the whole
        images, or in tiles of ``eval_window`` px (a net trained on crops) as ``src.predict``
        does."""
        window, border = self.evaluation_window()
        if window is None:
            return self.predict_logits(images)
        return window_logits(self.predict_logits, images, window, border=border)

    def predict_step(self, batch: dict[str, torch.Tensor] | Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Class probabilities of a batch (dict items with "image", or tuples with the images
        first), so ``trainer.predict`` runs on any number of devices."""
        images = batch["image"] if isinstance(batch, Mapping) else batch[0]
        return self.probabilities(self.predict_logits(images))

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        right_reasons = split == "train" and self.hparams.rrr_weight > 0
        images = batch["image"].detach().requires_grad_(True) if right_reasons else batch["image"]
        logits = self(images) if split == "train" else self.evaluation_logits(images)
        loss = self.loss_fn(logits, batch["mask"], batch.get("weight"))
        if right_reasons:
            penalty = right_reasons_penalty(images, logits, batch["mask"], self.hparams.rrr_margin, self.hparams.get("ignore_index"))
            loss = loss + self.hparams.rrr_weight * penalty
        metrics: SegmentationMetrics = getattr(self, f"{split}_metrics")
        metrics.update(self.probabilities(logits.detach()), batch["mask"], loss)
        return loss

    # The loss and metrics are computed once per epoch and logged as numbers: self.log at every
    # step costs Lightning's per-call bookkeeping (`make bench` measures where an epoch goes).
    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log_train_metrics()

    def log_train_metrics(self) -> None:
        """The epoch's train loss and metrics, logged once: a callback whose epoch-end work
        prints (the reduction) calls it first, so the epoch's line can come before that work."""
        self._log_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, split: str) -> None:
        metrics: SegmentationMetrics = getattr(self, f"{split}_metrics")
        if metrics.batches:  # e.g. limit_val_batches=0: nothing to report
            name = self.logged_name(split)
            values = {f"{name}/{key.split('/', 1)[1]}": value for key, value in metrics.compute().items()}
            self.log(f"{name}/loss", values.pop(f"{name}/loss"), prog_bar=True, sync_dist=True)
            self.log_dict(values, sync_dist=True)
        metrics.reset()

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if self.loss_name in WEIGHTED and (datamodule is None or not experiment_data(datamodule).provides_weights):
            raise UserInputError(f"loss {self.loss_name} needs per-pixel weights from the data: use data=membrane with data.border_weights=true.")
