"""The U-Net of the original study (Ronneberger et al. 2015 with padded convolutions), written by hand
because its ablations (no skips, upsampling kind, dropout only at the deepest levels) are the
experiment; smp's U-Net fixes them."""

from __future__ import annotations

import torch
from torch import nn

from src.config.errors import UserInputError
from src.config.schemas import check_choice
from src.config.schemas.models import UPSAMPLINGS
from src.models.padding import crop, pad_to_multiple


def double_conv(in_channels: int, out_channels: int, batch_norm: bool, dropout: float) -> nn.Sequential:
    """Two 3x3 same-padded convolutions with ReLU (batch norm before each ReLU if asked)."""
    layers: list[nn.Module] = []
    for c_in in (in_channels, out_channels):
        layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


def up_block(in_channels: int, out_channels: int, upsampling: str) -> nn.Module:
    """Double the resolution and halve the channels: a 2x2 stride-2 transposed conv, or
    (as in the original study's Keras code) nearest/bilinear upsampling followed by a 2x2 'same' conv."""
    if upsampling == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode=upsampling, **({"align_corners": False} if upsampling == "bilinear" else {})),
        nn.ZeroPad2d((0, 1, 0, 1)),  # Keras 'same' padding for an even kernel pads right/bottom
        nn.Conv2d(in_channels, out_channels, kernel_size=2),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` poolings; level i has ``base_width * 2**i`` channels.

    Args:
        in_channels: input image channels.
        out_channels: output channels (logits; the LightningModule applies sigmoid/softmax).
        depth: number of 2x2 max-poolings (the original study: 3 on 32x32 eliret, 4 on membrane).
        base_width: channels at full resolution (the original study: 64; 16 is plenty for eliret).
        upsampling: ``transpose`` | ``bilinear`` | ``nearest``.
        batch_norm: batch norm after every convolution.
        dropout: Dropout2d probability at the ``dropout_levels`` deepest levels (the original study: 0.5, 2).
        skip: concatenate encoder features into the decoder; ``False`` is the no-skip ablation.
        pad_input: reflect-pad inputs whose sides do not divide by 2**depth (else refuse them).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int,
        base_width: int,
        upsampling: str,
        batch_norm: bool,
        dropout: float,
        dropout_levels: int,
        skip: bool,
        pad_input: bool,
    ) -> None:
        super().__init__()
        check_choice("model.net.upsampling", upsampling, UPSAMPLINGS)
        if depth < 1:
            raise UserInputError(f"model.net.depth={depth} must be >= 1.")
        if base_width < 1:
            raise UserInputError(f"model.net.base_width={base_width} must be >= 1.")
        if not 0.0 <= dropout < 1.0:
            raise UserInputError(f"model.net.dropout={dropout} must be in [0, 1).")
        self.depth, self.skip, self.pad_input = depth, skip, pad_input
        widths = [base_width * 2**i for i in range(depth + 1)]

        def level_dropout(level: int) -> float:
            return dropout if level > depth - dropout_levels else 0.0

        self.encoders = nn.ModuleList(double_conv(in_channels if i == 0 else widths[i - 1], widths[i], batch_norm, level_dropout(i)) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(widths[depth - 1], widths[depth], batch_norm, level_dropout(depth))
        self.ups = nn.ModuleList(up_block(widths[i + 1], widths[i], upsampling) for i in reversed(range(depth)))
        self.decoders = nn.ModuleList(double_conv(widths[i] * (2 if skip else 1), widths[i], batch_norm, 0.0) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, 2**self.depth, self.pad_input, "UNet")
        features = []
        for encoder in self.encoders:
            x = encoder(x)
            features.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip_features in zip(self.ups, self.decoders, reversed(features)):
            x = up(x)
            if self.skip:
                x = torch.cat([skip_features, x], dim=1)
            x = decoder(x)
        return crop(self.head(x), size)
