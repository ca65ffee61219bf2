"""The reference the framework is measured against: a plain PyTorch training loop in the notes'
notebook style (the same U-Net, loss, optimizer, data and batch size, train then validate every
epoch), with nothing else around it."""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from src.models.losses import build_loss
from src.models.unet import UNet


def plain_fit(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    task: str,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    clock: list[float] | None = None,
) -> float:
    """Train ``epochs`` epochs (Adam, lr 1e-3, the task's default loss) and validate after each;
    returns the last validation loss, so the work cannot be optimised away. ``clock`` receives
    the time each epoch starts."""
    torch.manual_seed(seed)
    net = UNet(in_channels=train[0].shape[1], out_channels=1, depth=3, base_width=16)
    _, loss_fn = build_loss(None, task)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_loader = DataLoader(TensorDataset(*train), batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(*val), batch_size=batch_size)
    val_loss = float("nan")
    for _ in range(epochs):
        if clock is not None:
            clock.append(time.perf_counter())
        net.train()
        for images, masks in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(net(images), masks, None)
            loss.backward()
            optimizer.step()
        net.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for images, masks in val_loader:
                total += float(loss_fn(net(images), masks, None)) * len(images)
                count += len(images)
        val_loss = total / count
    return val_loss


def main() -> None:
    """``python -m bench.reference_loop --data-dir D --epochs N``: the plain loop on eliret, as
    a process of its own (the start-up comparison)."""
    import argparse

    from src.data.eliret import EliretDataModule

    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    datamodule = EliretDataModule(data_dir=f"{args.data_dir}/eliret")
    datamodule.prepare_data()
    datamodule.setup("fit")
    train, val = datamodule.splits["train"], datamodule.splits["val"]
    print(plain_fit((train.images, train.masks), (val.images, val.masks), datamodule.task, args.epochs, 10))


if __name__ == "__main__":
    main()
