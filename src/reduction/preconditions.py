"""What a reduction run must hold before its first epoch, checked in the callback's ``setup``: a
model with per-pixel class outputs, a training set held in memory that can be replaced, what the
chosen method and ``removed`` need, and a ``maps_from`` checkpoint of the same network. Each
refusal names the fix (:class:`~src.config.errors.UserInputError`)."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from src.config.errors import UserInputError
from src.config.schemas.reduction import CUE_ORACLE
from src.data.contract import ExperimentData
from src.data.segmentation_dataset import SegmentationTensors
from src.models.segmentation import SegmentationModule
from src.reduction.removal_measures import KnownCue
from src.storage.checkpoints import read_checkpoint


def check_can_reduce(datamodule: ExperimentData, pl_module: L.LightningModule, method: str, background_class: int, removed: str) -> None:
    """Refuse a run the reduction cannot serve, before any training."""
    if not isinstance(pl_module, SegmentationModule):
        raise UserInputError(f"reduction needs a segmentation model with per-pixel class outputs; {type(pl_module).__name__} has none.")
    out_channels = pl_module.hparams.get("out_channels", 1)
    if out_channels > 1 and not 0 <= background_class < out_channels:
        raise UserInputError(f"reduction.background_class={background_class} is not a class of this model (0..{out_channels - 1}).")
    if method == CUE_ORACLE and not isinstance(datamodule, KnownCue):
        raise UserInputError("reduction.method=cue_oracle ranks a known cue's pixels last: use a data set that knows its cue (data=shortcut).")
    if datamodule.streamed:
        raise UserInputError(
            "reduction keeps the reduced training set in memory, but this folder set is larger than data.memory_limit_mb "
            "and is read from disk; raise data.memory_limit_mb (the log gives the set's size), set data.image_size, or reduction=none."
        )
    if not isinstance(datamodule.train_set, SegmentationTensors):
        raise UserInputError(
            f"reduction needs a data module whose training set can be replaced (a `train_set` SegmentationTensors); {type(datamodule).__name__} has none."
        )
    if removed == "ignore" and pl_module.hparams.get("ignore_index") is None:
        raise UserInputError(
            "reduction.removed=ignore needs a model whose loss skips an ignore_index; build it through src.train (which sets one), or pass ignore_index to the model."
        )


def check_same_network(checkpoint: Path, pl_module: L.LightningModule) -> None:
    """Refuse, before training, a ``maps_from`` checkpoint whose weights do not fit this model."""
    stored = read_checkpoint(checkpoint).get("state_dict", {})
    own = pl_module.state_dict()
    differ = sorted(k for k in set(stored) | set(own) if k not in stored or k not in own or stored[k].shape != own[k].shape)
    if differ:
        raise UserInputError(
            f"reduction.maps_from={checkpoint} holds another network than this run's ({len(differ)} weights differ, e.g. {differ[0]}); "
            "train the baseline with the same model and data settings, or point maps_from at its run."
        )
