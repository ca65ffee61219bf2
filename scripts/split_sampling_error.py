"""How precisely a test split measures a run's object mIoU: the bootstrap standard deviation over
the split's images (1,000 resamples) of a baseline's best checkpoint, next to the study's margin.

``python scripts/split_sampling_error.py --experiment reduction_benchmark_far_baselines \\
    --data-dir data/shortcut_benchmark_far outputs/reduction_benchmark_far/baselines/seed_0 [...]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from src.config.compose import compose_config
from src.jobs.builders import build_datamodule
from src.storage.checkpoints import load_module, trained_checkpoint


def confusions(module: torch.nn.Module, dataset: Dataset, classes: int) -> np.ndarray:
    """(N, classes, classes) confusion counts, one matrix per image (rows: target, columns: prediction)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(dataset), 100):
            items = [dataset[i] for i in range(start, min(start + 100, len(dataset)))]
            predicted = module(torch.stack([item["image"] for item in items])).argmax(1)
            for prediction, target in zip(predicted, (item["mask"].long() for item in items)):
                counts = torch.zeros(classes, classes, dtype=torch.long)
                counts.index_put_((target.flatten(), prediction.flatten()), torch.ones(target.numel(), dtype=torch.long), accumulate=True)
                out.append(counts.numpy())
    return np.stack(out)


def miou_object(counts: np.ndarray) -> float:
    """The split's object-class mIoU (every class but background 0), from summed confusions."""
    total = counts.sum(0)
    inter = np.diag(total)
    union = total.sum(0) + total.sum(1) - inter
    return float(np.mean(inter[1:] / union[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="test_reversed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        seed = int(run.name.rsplit("_", 1)[-1])
        cfg = compose_config("train", [f"experiment={args.experiment}", f"seed={seed}", "hydra.mode=RUN", f"data.data_dir={args.data_dir}"], run)
        datamodule = build_datamodule(cfg)
        datamodule.prepare_data()
        datamodule.setup("test")
        module = load_module(trained_checkpoint(run)).eval()
        counts = confusions(module, datamodule.splits[args.split], datamodule.out_channels)
        draws = np.random.default_rng(0).integers(0, len(counts), (1000, len(counts)))
        spread = np.std([miou_object(counts[pick]) for pick in draws])
        print(f"{run}: {args.split} object mIoU {miou_object(counts):.4f} over {len(counts)} images, bootstrap sd {spread:.4f}")


if __name__ == "__main__":
    main()
