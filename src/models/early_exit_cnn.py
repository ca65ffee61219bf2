"""A CNN classifier with side exits (BranchyNet/SDN style), written by hand because the exits,
their heads and the stage-by-stage execution are the experiment."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.config.errors import UserInputError
from src.config.schemas import check_choice
from src.config.schemas.models import EXIT_HEADS
from src.models.unet import double_conv


def conv_stage(in_channels: int, out_channels: int, batch_norm: bool, dropout: float) -> nn.Sequential:
    """The U-Net's double 3x3 conv (+ BN) + ReLU (+ dropout), then a 2x2 max-pool."""
    return nn.Sequential(*double_conv(in_channels, out_channels, batch_norm, dropout), nn.MaxPool2d(2))


class ExitHead(nn.Module):
    """``pool_linear``: global average pooling + linear; ``conv_pool_linear``: a 3x3 conv + ReLU
    first (``self.conv``, the exit's last conv layer, where Grad-CAM looks)."""

    def __init__(self, in_channels: int, num_classes: int, kind: str, hidden: int) -> None:
        super().__init__()
        check_choice("model.net.head", kind, EXIT_HEADS)
        self.conv = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True)) if kind == "conv_pool_linear" else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(hidden if kind == "conv_pool_linear" else in_channels, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.conv(features))

    def classify(self, head_features: torch.Tensor) -> torch.Tensor:
        """Logits from the head's own features (``self.conv``'s output), which the class
        activation map reuses: CAM_c = sum_j w_cj h_j, and its spatial mean plus the bias is the
        logit."""
        return self.linear(self.pool(head_features).flatten(1))


class EarlyExitCNN(nn.Module):
    """Backbone of ``stages`` conv stages (stage i has ``base_width * 2**i`` channels) with an exit
    head after each stage listed in ``exit_stages``; the last stage always has the final exit.

    ``forward`` runs the whole network and returns every exit's logits (for joint training);
    ``stages[i]`` and ``heads[k]`` can be run one by one for real early exit at inference.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        stages: int,
        base_width: int,
        exit_stages: Sequence[int],
        head: str,
        head_width: int,
        batch_norm: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        exit_stages = list(exit_stages)
        if len(exit_stages) > stages:
            raise UserInputError(
                f"{len(exit_stages)} exits (model.net.exit_stages={exit_stages}) but the backbone has only "
                f"{stages} stages; use at most one exit per stage or raise model.net.stages."
            )
        bad = [s for s in exit_stages if not 0 <= s < stages]
        if bad:
            raise UserInputError(f"exit stage(s) {bad} out of range: stages are numbered 0..{stages - 1} (model.net.exit_stages).")
        if sorted(set(exit_stages)) != exit_stages:
            raise UserInputError(f"model.net.exit_stages={exit_stages} must be strictly increasing.")
        if not exit_stages or exit_stages[-1] != stages - 1:
            raise UserInputError(f"model.net.exit_stages={exit_stages} must end with the last stage ({stages - 1}): the final exit.")
        widths = [base_width * 2**i for i in range(stages)]
        self.stages = nn.ModuleList(conv_stage(in_channels if i == 0 else widths[i - 1], widths[i], batch_norm, dropout) for i in range(stages))
        self.exit_stages = exit_stages
        self.heads = nn.ModuleList(ExitHead(widths[s], num_classes, head, head_width) for s in exit_stages)

    @property
    def num_exits(self) -> int:
        return len(self.exit_stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        logits, k = [], 0
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if k < self.num_exits and self.exit_stages[k] == i:
                logits.append(self.heads[k](x))
                k += 1
        return logits

    def exit_layer(self, k: int) -> nn.Module:
        """The last conv layer seen by exit k (its head's conv, else its stage's last conv)."""
        head = self.heads[k]
        if isinstance(head.conv, nn.Sequential):
            return head.conv[0]
        return [m for m in self.stages[self.exit_stages[k]] if isinstance(m, nn.Conv2d)][-1]
