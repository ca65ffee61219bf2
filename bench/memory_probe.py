"""Peak memory of one job, in a process of its own: ``python -m bench.memory_probe pet
--pet-dir D --size 256`` (a Pet-sized set held as the reduction holds it) or ``membrane512
--data-dir D`` (a membrane training step at full resolution). Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import logging

import torch

from bench.timing import peak_rss_mib
from src.config.schemas import with_defaults


def pet(pet_dir: str, size: int) -> dict[str, object]:
    """The Pet data module's training set, then what a reduction round keeps beside it: the
    original images, the keep-masks and the filled images swapped in (``fill_stored``)."""
    from src.data.pet import PetDataModule
    from src.reduction.masking import fill_stored

    datamodule = with_defaults(PetDataModule, data_dir=pet_dir, image_size=size)
    datamodule.setup("fit")
    train = datamodule.train_set
    loaded = peak_rss_mib()
    original = train.images.clone()
    keep = torch.rand(len(original), size, size) < 0.9
    train.replace_images(fill_stored(original, keep, "zero"))
    return {
        "images": sum(len(s) for s in datamodule.splits.values()),
        "image_size": size,
        "storage": str(train.images.dtype),
        "train_images_mib": round(train.images.numel() * train.images.element_size() / 2**20, 1),
        "peak_rss_after_loading_mib": loaded,
        "peak_rss_mib": peak_rss_mib(),
    }


def membrane512(data_dir: str) -> dict[str, object]:
    """Three training steps and two validation batches of the membrane preset at 512 px, batch 4."""
    from bench.framework import framework_fit

    overrides = [
        f"paths.data_dir={data_dir}", "data=membrane", "data.image_size=512", "data.batch_size=4", "reduction=none",
        "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "test=false",
        "logger=none", "callbacks.progress_bar=null",
    ]  # fmt: skip
    framework_fit(overrides)
    return {"image_size": 512, "batch_size": 4, "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("job", choices=("pet", "membrane512"))
    parser.add_argument("--pet-dir")
    parser.add_argument("--data-dir")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    result = pet(args.pet_dir, args.size) if args.job == "pet" else membrane512(args.data_dir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
