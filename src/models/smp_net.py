"""Any segmentation_models_pytorch architecture by name (Unet, UnetPlusPlus, FPN, PSPNet, ...)."""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
from torch import nn

from src.config.errors import UserInputError


def smp_model(
    arch: str,
    in_channels: int,
    out_channels: int,
    encoder_name: str,
    encoder_weights: str | None,
    **kwargs: Any,
) -> nn.Module:
    """Build ``smp.create_model(arch, ...)``. No pretrained weights unless asked for, so nothing
    touches the network by default; a failed weight download stops with the way out."""
    known = {name.lower(): cls.__name__ for name, cls in smp.MODEL_ARCHITECTURES_MAPPING.items()}
    if arch.lower() not in known:
        raise UserInputError(f"unknown model.net.arch={arch!r}; choose one of {', '.join(sorted(known.values()))}.")
    try:
        return smp.create_model(
            arch,
            encoder_name=encoder_name,
            encoder_weights=encoder_weights,
            in_channels=in_channels,
            classes=out_channels,
            **kwargs,
        )
    except KeyError as err:
        raise UserInputError(f"smp does not know encoder {encoder_name!r} ({err}); see segmentation_models_pytorch's encoder list.") from err
    except (OSError, ConnectionError, RuntimeError) as err:
        if encoder_weights is None:
            raise
        raise UserInputError(
            f"could not load pretrained weights {encoder_weights!r} for encoder {encoder_name!r}: {err}. "
            "The model hub is unreachable or the weights do not exist; set model.net.encoder_weights=null "
            "to train from scratch, or run once with network access to fill the cache."
        ) from err
