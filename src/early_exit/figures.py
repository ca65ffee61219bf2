"""The early-exit figures: accuracy vs compute, each signal's quality per exit, and each exit's maps."""

from __future__ import annotations

from pathlib import Path

import torch

from src.early_exit.costs import ExitCosts
from src.early_exit.scores import ExitRecord
from src.loggers.figures import save_figure, subplots


def plot_tradeoff(path: Path, test_rows: list[dict[str, object]], chosen: dict[str, dict], costs: ExitCosts) -> None:
    fig, ax = subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["policy"] for r in test_rows):
        rows = sorted((r for r in test_rows if r["policy"] == name), key=lambda r: r["mean_flops"])
        ax.plot([r["mean_flops"] / 1e6 for r in rows], [r["accuracy"] for r in rows], label=name, linewidth=1.2)
        if name in chosen:
            ax.scatter([chosen[name]["test_mean_flops"] / 1e6], [chosen[name]["test_accuracy"]], s=25)
    ax.axvline(costs.full_network / 1e6, color="gray", linestyle=":", linewidth=1)
    ax.set_xlabel("mean MFLOPs per sample (dotted: full network)")
    ax.set_ylabel("test accuracy")
    ax.set_title("early exit: accuracy vs compute (dots: thresholds chosen on validation)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_signal_quality(path: Path, rows: list[dict[str, object]]) -> None:
    fig, (left, right) = subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["signal"] for r in rows):
        mine = [r for r in rows if r["signal"] == name]
        left.plot([r["exit"] for r in mine], [r["auroc"] for r in mine], marker="o", label=name)
        right.plot([r["exit"] for r in mine], [r["aurc"] for r in mine], marker="o", label=name)
    left.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    left.set(xlabel="exit", ylabel="AUROC (right vs wrong), test", title="higher: ranks errors last")
    right.set(xlabel="exit", ylabel="AURC, test", title="lower: less risk at every coverage")
    left.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_saliency(path: Path, images: torch.Tensor, record: ExitRecord, count: int = 6) -> None:
    k = len(record.maps)
    count = min(count, len(images))
    fig, axes = subplots(count, k + 1, figsize=(1.8 * (k + 1), 1.8 * count), squeeze=False)
    for i in range(count):
        image = images[i].float().clamp(0, 1)
        axes[i, 0].imshow(image[0] if image.shape[0] == 1 else image.permute(1, 2, 0), cmap="gray")
        for e in range(k):
            axes[i, e + 1].imshow(record.maps[e, i], cmap="inferno")
            if i == 0:
                axes[i, e + 1].set_title(f"exit {e}", fontsize=9)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)
