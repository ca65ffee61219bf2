"""Robustness to shifted test data: each shift as a unit, and the evaluation through the train
and eval entry points."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.config.errors import UserInputError
from src.jobs.evaluation import evaluate
from src.robustness.evaluate import summary
from src.robustness.shifts import SEVERITIES, SHIFTS, background_of, item_generator
from src.train import train

GEOMETRIC = ("off_centre", "elastic")


def sample(index: int, channels: int = 1, size: tuple[int, int] = (32, 40), long_target: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy image with one bright rectangle (the foreground) off its centre."""
    generator = torch.Generator().manual_seed(index)
    image = 0.2 + 0.1 * torch.rand(channels, *size, generator=generator)
    target = torch.zeros(1, *size)
    top, left = 4 + index % 5, 6 + index % 7
    target[:, top : top + 10, left : left + 12] = 1.0
    image = torch.where(target.bool(), torch.full_like(image, 0.8), image)
    return image, (target[0].long() if long_target else target)


def shifted(name: str, index: int, severity: int, seed: int = 0, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    image, target = sample(index, **kwargs)
    return SHIFTS[name](image, target, severity, item_generator(seed, index, name, severity))


def displacement(name: str, index: int, severity: int) -> float:
    """How far a shift moved an image from the clean one: the target's centroid for translation,
    the mean absolute change of the image otherwise."""
    clean_image, clean_target = sample(index)
    image, target = shifted(name, index, severity)
    if name == "off_centre":
        centroid = [(target[0] * grid).sum() / target.sum() for grid in torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")]
        start = [(clean_target[0] * grid).sum() / clean_target.sum() for grid in torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")]
        return float(torch.dist(torch.stack(centroid), torch.stack(start)))
    return float((image - clean_image).abs().mean())


@pytest.mark.parametrize("name", SHIFTS)
@pytest.mark.parametrize("channels,long_target", [(1, False), (3, True)])
def test_every_shift_is_the_identity_at_severity_0(name: str, channels: int, long_target: bool) -> None:
    clean = sample(3, channels=channels, long_target=long_target)
    image, target = shifted(name, 3, 0, channels=channels, long_target=long_target)
    assert torch.equal(image, clean[0]) and torch.equal(target, clean[1])
    for severity in SEVERITIES:
        image, target = shifted(name, 3, severity, channels=channels, long_target=long_target)
        assert image.shape == clean[0].shape and target.shape == clean[1].shape and target.dtype == clean[1].dtype
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert not torch.equal(image, clean[0])


@pytest.mark.parametrize("name", SHIFTS)
def test_severities_are_ordered(name: str) -> None:
    # averaged over images: a single draw of bars or shapes may overlap
    means = [np.mean([displacement(name, i, s) for i in range(8)]) for s in (0, *SEVERITIES)]
    assert means[0] == 0.0 and means[1] < means[2] < means[3], means


@pytest.mark.parametrize("name", SHIFTS)
def test_a_shift_is_deterministic_for_seed_image_and_severity(name: str) -> None:
    first = shifted(name, 5, 2, seed=1)
    again = shifted(name, 5, 2, seed=1)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    if name not in ("gaussian_blur", "contrast", "brightness", "jpeg"):  # these draw nothing
        assert not torch.equal(first[0], shifted(name, 5, 2, seed=2)[0])


@pytest.mark.parametrize("name", GEOMETRIC)
def test_the_label_moves_with_the_image(name: str) -> None:
    """An image that is its own label: after a geometric shift the two still coincide."""
    _, target = sample(2)
    for severity in SEVERITIES:
        image, moved = SHIFTS[name](target.clone(), target.clone(), severity, item_generator(0, 2, name, severity))
        assert not torch.equal(moved, target)
        agreement = ((image > 0.5) == (moved > 0.5)).float().mean()
        assert agreement == 1.0 if name == "off_centre" else agreement > 0.97


@pytest.mark.parametrize("name", [n for n in SHIFTS if n not in GEOMETRIC])
def test_photometric_shifts_leave_the_label_alone(name: str) -> None:
    _, target = sample(4)
    assert torch.equal(shifted(name, 4, 3)[1], target)


def test_clutter_paints_the_foregrounds_grey_on_background_pixels_only() -> None:
    clean, target = sample(6)
    image, _ = shifted("clutter", 6, 3)
    changed = (image != clean).any(0)
    assert changed.any() and not (changed & ~background_of(target)).any()
    assert torch.allclose(image[:, changed], torch.tensor(0.8))


def test_summary_means_over_severities_then_shifts() -> None:
    rows = [
        {"shift": "a", "severity": 0, "test/miou": 0.9},
        {"shift": "a", "severity": 1, "test/miou": 0.8},
        {"shift": "a", "severity": 2, "test/miou": 0.6},
        {"shift": "b", "severity": 0, "test/miou": 0.9},
        {"shift": "b", "severity": 1, "test/miou": 0.4},
    ]
    assert summary(rows) == pytest.approx({"test_shift/a/miou": 0.7, "test_shift/b/miou": 0.4, "test_shift/miou": 0.55})


@pytest.mark.slow
def test_train_and_eval_with_robustness_write_the_csv_and_the_metrics(make_cfg, tmp_path: Path) -> None:
    common = ("robustness=standard", "reduction.rounds=2", "trainer.max_epochs=2", "trainer.limit_train_batches=2", "callbacks.model_summary=null")
    metrics = train(make_cfg("train", *common))
    with open(tmp_path / "robustness" / "robustness.csv") as handle:
        rows = list(csv.DictReader(handle))
    shifts = ["gaussian_noise", "gaussian_blur", "contrast", "brightness", "jpeg", "occlusion", "clutter", "off_centre"]
    assert [(r["shift"], r["severity"]) for r in rows] == [(s, str(v)) for s in shifts for v in range(4)]
    clean = [r for r in rows if r["severity"] == "0"]
    assert all(float(r["test/miou"]) == pytest.approx(metrics["test/miou"], rel=1e-5) for r in clean)
    assert (tmp_path / "robustness" / "robustness.png").stat().st_size > 1000
    for shift in shifts:
        assert metrics[f"test_shift/{shift}/miou"] == pytest.approx(
            np.mean([float(r["test/miou"]) for r in rows if r["shift"] == shift and r["severity"] != "0"])
        )
    assert metrics["test_shift/miou"] == pytest.approx(np.mean([metrics[f"test_shift/{s}/miou"] for s in shifts]))
    # the best checkpoint within the final round, tested and shifted too
    assert metrics["final_round/epoch"] == 1.0 and "final_round/test/miou" in metrics and "final_round/test_shift/miou" in metrics
    assert (tmp_path / "robustness" / "final_round" / "robustness.csv").exists()
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)

    best = json.loads((tmp_path / "run.json").read_text())["best_checkpoint"]
    evaluated = evaluate(make_cfg("eval", f"ckpt_path={best}", "robustness=standard"))
    assert evaluated["test_shift/miou"] == pytest.approx(metrics["test_shift/miou"], rel=1e-5)
    assert (tmp_path / "robustness" / "robustness.csv").exists()


@pytest.mark.slow
def test_an_unknown_shift_is_refused_by_name_before_training(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"unknown robustness shift\(s\) snow in robustness.shifts; choose from gaussian_noise"):
        train(make_cfg("train", "robustness=standard", "robustness.shifts=[snow]", "trainer.max_epochs=1", "reduction.rounds=0"))
    assert not (tmp_path / "checkpoints").exists()
