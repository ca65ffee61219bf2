"""What every LightningModule of the framework shares: optimizer and scheduler from partial
configs, input normalisation inside the module, self-describing checkpoints."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import lightning as L
import torch
from hydra.utils import instantiate

from src.storage.checkpoints import record_module_class


class ConfiguredModule(L.LightningModule):
    """Subclasses call ``super().__init__(...)`` then ``self.save_hyperparameters`` themselves, and
    implement ``_step``; the train/val/test steps all go through it."""

    # the name test metrics are logged under: `test` is the run's own checkpoint on its test
    # split; the jobs give every other test pass its own name (`testing_as`)
    test_name = "test"
    # what the module learns from: "segmentation" (a target per pixel) or "classification" (a
    # label per image); a run pairs it with data of the same kind
    kind: ClassVar[str]

    def __init__(self, input_mean: Sequence[float], input_std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.tensor(list(input_mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("input_std", torch.tensor(list(input_std), dtype=torch.float32).view(1, -1, 1, 1))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.input_mean) / self.input_std

    def net_input(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images, in the NHWC layout when the module runs ``channels_last``."""
        x = self.normalise(images)
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.get("channels_last") else x

    def logged_name(self, split: str) -> str:
        """The key prefix ``split``'s metrics are logged under (``test``: ``test_name``)."""
        return self.test_name if split == "test" else split

    @contextmanager
    def testing_as(self, name: str) -> Iterator[None]:
        """Test passes inside the block log their metrics as ``<name>/<metric>`` (for example
        ``final_round/test`` or ``test_reversed``), so each key means one evaluation."""
        previous, self.test_name = self.test_name, name
        try:
            yield
        finally:
            self.test_name = previous

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        """Loss and metrics of one batch of ``split`` (train, val or test); logs them."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_epoch=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        record_module_class(self, checkpoint)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer_cfg: Mapping[str, Any] = self.hparams.optimizer
        scheduler_cfg: Mapping[str, Any] | None = self.hparams.scheduler
        # both configs are partials (`_partial_: true`): the parameters and optimizer bind here
        optimizer = instantiate(optimizer_cfg)(self.parameters())
        if not scheduler_cfg:
            return {"optimizer": optimizer}
        scheduler = instantiate(scheduler_cfg)(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor, "interval": "epoch"},
        }
