"""The reference the framework is measured against: a plain PyTorch training loop in the original study's
notebook style (the same U-Net, loss, optimizer, data and batch size, train then validate every
epoch), with nothing else around it."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from bench.epoch_parts import Stopwatch
from src.config.schemas import with_defaults
from src.models.losses import build_loss
from src.models.unet import UNet


def plain_fit(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    task: str,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    watch: Stopwatch | None = None,
) -> float:
    """Train ``epochs`` epochs (Adam, lr 1e-3, the task's default loss) and validate after each;
    returns the last validation loss, so the work cannot be optimised away. ``watch`` times the
    epochs and their parts (``bench.epoch_parts``)."""
    torch.manual_seed(seed)
    watch = watch if watch is not None else Stopwatch()
    net = with_defaults(UNet, in_channels=train[0].shape[1], out_channels=1, depth=3, base_width=16)
    watch.watch_forward(net)
    loss_fn = watch.timed("loss", build_loss(None, task)[1])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_loader = DataLoader(TensorDataset(*train), batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(*val), batch_size=batch_size)
    val_loss = float("nan")
    for _ in range(epochs):
        watch.epoch_start()
        net.train()
        for images, masks in watch.iterate("data", train_loader):
            optimizer.zero_grad()
            loss = loss_fn(net(images), masks, None)
            loss.backward()
            optimizer.step()
        net.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for images, masks in watch.iterate("data", val_loader):
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
    datamodule = with_defaults(EliretDataModule, data_dir=f"{args.data_dir}/eliret")
    datamodule.prepare_data()
    datamodule.setup("fit")
    train, val = datamodule.splits["train"], datamodule.splits["val"]
    print(plain_fit((train.images, train.masks), (val.images, val.masks), datamodule.task, args.epochs, 10))


if __name__ == "__main__":
    main()
