"""The eliret FCN of the original study: strided 5x5 convolutions down, 5x5 transposed convolutions up,
no skips. Hand-written because it is the original study's baseline (no library ships this net)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.config.errors import UserInputError
from src.models.padding import crop, pad_to_multiple


class FCN(nn.Module):
    """Fully convolutional encoder-decoder without skip connections.

    Args:
        in_channels, out_channels: image channels in, logit channels out.
        widths: channels after each stride-2 5x5 convolution (the original study: 20, 40 -> 32x32 to 8x8).
            The decoder mirrors them with stride-2 5x5 transposed convolutions; the last one is
            linear and outputs ``out_channels``.
        kernel_size: 5 in the original study; odd.
        dropout: after every hidden layer (the original study: 0.25).
        pad_input: reflect-pad inputs whose sides do not divide by 2**len(widths).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: Sequence[int],
        kernel_size: int,
        dropout: float,
        pad_input: bool,
    ) -> None:
        super().__init__()
        widths = list(widths)
        if not widths or min(widths) < 1:
            raise UserInputError(f"model.net.widths={widths} must be a non-empty list of positive channel counts.")
        if kernel_size % 2 == 0:
            raise UserInputError(f"model.net.kernel_size={kernel_size} must be odd.")
        if not 0.0 <= dropout < 1.0:
            raise UserInputError(f"model.net.dropout={dropout} must be in [0, 1).")
        self.factor, self.pad_input = 2 ** len(widths), pad_input
        pad = kernel_size // 2
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels] + widths[:-1], widths):
            layers += [nn.Conv2d(c_in, c_out, kernel_size, stride=2, padding=pad), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        # Decoder mirrors the encoder: hidden transposed convs to widths[-1], ..., widths[1],
        # then a linear one to out_channels (for (20, 40): 40 -> 40 -> out, as in the original study).
        dec_out = widths[:0:-1]
        dec_in = [widths[-1]] + dec_out[:-1]
        for c_in, c_out in zip(dec_in, dec_out):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, kernel_size, stride=2, padding=pad, output_padding=1),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
        final_in = dec_out[-1] if dec_out else widths[-1]
        layers.append(nn.ConvTranspose2d(final_in, out_channels, kernel_size, stride=2, padding=pad, output_padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.factor, self.pad_input, "FCN")
        return crop(self.layers(x), size)
