"""Small untrained models for unit tests."""

from __future__ import annotations

import torch

from src.config.schemas import net_config, with_defaults
from src.models.early_exit import EarlyExitClassifier

# an early-exit CNN with an exit after each of its 4 stages, narrow enough for unit tests
NET = net_config("early_exit_cnn", stages=4, base_width=4, exit_stages=[0, 1, 2, 3], head_width=8)


def classifier(**net) -> EarlyExitClassifier:
    torch.manual_seed(0)
    return with_defaults(
        EarlyExitClassifier, net={**NET, **net}, in_channels=1, num_classes=3, optimizer={"_target_": "torch.optim.Adam", "_partial_": True}
    ).eval()
