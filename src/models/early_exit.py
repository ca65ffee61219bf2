"""LightningModule for the early-exit classifier: every exit trained jointly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from src.config.errors import UserInputError
from src.models.base import ConfiguredModule
from src.models.early_exit_cnn import EarlyExitCNN
from src.storage.checkpoints import plain


class EarlyExitClassifier(ConfiguredModule):
    """Args:
    net: Hydra config of an ``EarlyExitCNN`` (without channels/classes; they come from the data).
    in_channels, num_classes: set from the data module.
    exit_weights: weight of each exit's cross-entropy in the joint loss; None = equal weights.
    optimizer, scheduler, monitor, input_mean, input_std, channels_last: as for the
        segmentation module (``channels_last`` also in early-exit inference).
    Logs ``{split}/acc_exit{k}`` for every exit, ``{split}/acc`` (final exit) and ``{split}/loss``.
    """

    kind = "classification"

    def __init__(
        self,
        net: Mapping[str, Any],
        in_channels: int,
        num_classes: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None,
        exit_weights: Sequence[float] | None,
        monitor: str,
        channels_last: bool,
        input_mean: Sequence[float] = (0.0,),
        input_std: Sequence[float] = (1.0,),
    ) -> None:
        super().__init__(input_mean, input_std)
        net, optimizer, scheduler, exit_weights = (plain(c) for c in (net, optimizer, scheduler, exit_weights))
        input_mean, input_std = list(input_mean), list(input_std)
        self.save_hyperparameters(logger=False)
        self.net: EarlyExitCNN = instantiate(net, in_channels=in_channels, num_classes=num_classes)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        k = self.net.num_exits
        weights = [1.0] * k if exit_weights is None else list(exit_weights)
        if len(weights) != k:
            raise UserInputError(f"model.exit_weights has {len(weights)} entries for {k} exits; give one per exit.")
        self.register_buffer("exit_weights", torch.tensor(weights) / sum(weights))
        self.accuracy = nn.ModuleDict(
            {f"{split}_{e}": MulticlassAccuracy(num_classes=num_classes, average="micro") for split in ("train", "val", "test") for e in range(k)}
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every exit's logits for raw images."""
        return self.net(self.net_input(images))

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        exits = self(batch["image"])
        losses = torch.stack([F.cross_entropy(logits, batch["label"]) for logits in exits])
        loss = (self.exit_weights * losses).sum()
        name = self.logged_name(split)
        self.log(f"{name}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        for e, logits in enumerate(exits):
            metric = self.accuracy[f"{split}_{e}"]
            metric.update(logits.detach().argmax(1), batch["label"])
            self.log(f"{name}/acc_exit{e}", metric, on_step=False, on_epoch=True)
        self.log(f"{name}/acc", self.accuracy[f"{split}_{len(exits) - 1}"], on_step=False, on_epoch=True, prog_bar=split == "val")
        return loss
