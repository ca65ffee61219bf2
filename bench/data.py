"""Loaders against the model: images per second each data set's training loader delivers (with
its default augmentation) at 0 and 2 workers, and images per second the configured model trains
on; the loader must not be the bottleneck."""

from __future__ import annotations

import torch

from bench.framework import training_data
from bench.timing import interleaved, median
from src.jobs.builders import build_model

WORKERS = (0, 2)


def _loader_epoch(loader) -> int:
    return sum(len(batch["image"]) for batch in loader)


def train_epoch(module, batches: list[dict[str, torch.Tensor]]) -> None:
    """Forward, backward and Adam steps over ``batches`` (dicts with "image", "mask" and maybe
    "weight"), with the module's own loss: the model's side, without a loop around it."""
    module.train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    for batch in batches:
        optimizer.zero_grad()
        module.loss_fn(module(batch["image"]), batch["mask"], batch.get("weight")).backward()
        optimizer.step()


def measure(data_dir: str, pet_dir: str | None, repetitions: int, data_sets: tuple[str, ...] = ("eliret", "membrane", "pet")) -> dict[str, dict]:
    results = {}
    for name in data_sets:
        cfg, datamodule = training_data([f"paths.data_dir={data_dir}", f"data={name}"] + ([f"data.data_dir={pet_dir}"] if name == "pet" else []))
        module = build_model(cfg, datamodule)
        n = len(datamodule.train_set)
        loaders = {}
        for workers in WORKERS:
            datamodule.hparams["num_workers"] = workers
            loaders[workers] = datamodule.train_dataloader()
            _loader_epoch(loaders[workers])  # workers start (persistent) outside the timing
        batches = list(loaders[0])
        arms = {f"loader_{w}_workers": (lambda loader=loaders[w]: _loader_epoch(loader)) for w in WORKERS}
        arms["model"] = lambda m=module, b=batches: train_epoch(m, b)
        times = interleaved(arms, repetitions)
        results[name] = {
            "train_images": n,
            "image_size": int(batches[0]["image"].shape[-1]),
            "batch_size": int(cfg.data.batch_size),
            "augmentation": type(datamodule.augment).__name__ if datamodule.augment is not None else "none",
            "default_workers": int(cfg.data.num_workers),
            **{f"{arm}_images_per_s": n / median(t) for arm, t in times.items()},
        }
        results[name]["loader_over_model_at_default_workers"] = (
            results[name][f"loader_{cfg.data.num_workers}_workers_images_per_s"] / results[name]["model_images_per_s"]
        )
    return results
