"""The reference the framework is measured against: the notes' notebook-style PyTorch loop
(shuffle, forward, loss, backward, step; then the validation loss), with the same net, data,
loss, optimizer and batch size as the framework run it is compared with."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from src.models.losses import build_loss


def fit_plain(net: nn.Module, mean: torch.Tensor, std: torch.Tensor, train: Dataset, val: Dataset, task: str, epochs: int, batch_size: int, lr: float) -> float:
    """Train ``epochs`` epochs with a validation pass after each; returns the last val loss."""
    _, loss_fn = build_loss(None, task)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(val, batch_size=batch_size)
    val_loss = float("nan")
    for _ in range(epochs):
        net.train()
        for batch in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(net((batch["image"] - mean) / std), batch["mask"])
            loss.backward()
            optimizer.step()
        net.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in val_loader:
                total += loss_fn(net((batch["image"] - mean) / std), batch["mask"]).item() * len(batch["image"])
                count += len(batch["image"])
        val_loss = total / count
    return val_loss
