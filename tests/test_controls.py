"""The reduction's controls: random and random_smooth relevance, keep=least and ROAD's impute
fill, as units and through the composed config (resume, DDP)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from src.reduction.imputation import NEIGHBOURS, impute
from src.reduction.masking import fill_removed, fill_stored, keep_mask, quota
from src.reduction.relevance import RelevanceConfig, random_relevance, relevance_maps
from src.train import train
from tests.helpers.runs import ddp_reduction_round

FAST = ("trainer.limit_train_batches=2", "callbacks.model_summary=null")
RANDOM = ("random", "random_smooth")


def rounds_csv(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "reduction" / "rounds.csv") as handle:
        return list(csv.DictReader(handle))


def maps(method: str, ids: torch.Tensor, seed: int = 0, round_: int = 0, size: int = 16) -> torch.Tensor:
    # the random controls never call the model: any module stands in
    config = RelevanceConfig(method=method, seed=seed, smooth_scale=0.1)
    return relevance_maps(torch.nn.Identity(), torch.zeros(len(ids), 1, size, size), config, ids, round_)


@pytest.mark.parametrize("method", RANDOM)
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 5), percentile=st.sampled_from([10.0, 50.0, 90.0, 99.0]))
def test_random_controls_keep_exactly_the_quota(method: str, n: int, percentile: float) -> None:
    relevance = maps(method, torch.arange(n))
    kept = keep_mask(relevance, torch.ones(n, 16, 16, dtype=torch.bool), percentile)
    assert kept.flatten(1).sum(1).tolist() == [quota(percentile, 256)] * n


@pytest.mark.parametrize("method", RANDOM)
def test_random_controls_differ_across_seeds_rounds_and_images_and_repeat_exactly(method: str) -> None:
    ids = torch.arange(4)
    first = maps(method, ids, seed=0, round_=0)
    assert torch.equal(first, maps(method, ids, seed=0, round_=0))
    assert not torch.equal(first, maps(method, ids, seed=1, round_=0))
    assert not torch.equal(first, maps(method, ids, seed=0, round_=1))
    assert not torch.equal(first[0], first[1])
    # an image's map depends on its index only, not on the batch it is computed in
    assert torch.equal(maps(method, torch.tensor([2, 3]))[1], first[3])


def test_random_smooth_is_blob_shaped() -> None:
    """Neighbouring pixels of the smoothed field are strongly correlated, the i.i.d. field's not."""

    def neighbour_correlation(field: np.ndarray) -> float:
        return float(np.corrcoef(field[:, :-1].ravel(), field[:, 1:].ravel())[0, 1])

    assert neighbour_correlation(random_relevance(torch.tensor([0]), 64, 64, 0, 0)[0].numpy()) < 0.1
    assert neighbour_correlation(random_relevance(torch.tensor([0]), 64, 64, 0, 0, smooth_scale=0.1)[0].numpy()) > 0.9


def test_keep_least_keeps_the_least_relevant_quota_of_a_strictly_ranked_map() -> None:
    relevance = torch.randperm(100, generator=torch.Generator().manual_seed(0)).float().view(1, 10, 10)
    present = torch.ones(1, 10, 10, dtype=torch.bool)
    least = keep_mask(relevance, present, 30, keep="least")
    most = keep_mask(relevance, present, 30, keep="most")
    assert least.sum() == most.sum() == 30
    assert torch.equal(relevance[least].sort().values, torch.arange(30).float())
    assert torch.equal(relevance[most].sort().values, torch.arange(70, 100).float())
    # among present pixels only: a removed pixel is never kept, however irrelevant
    present[0, 0, :] = False
    assert not (keep_mask(relevance, present, 30, keep="least") & ~present).any()


def _neighbour_mean(image: np.ndarray, y: int, x: int) -> np.ndarray:
    height, width = image.shape[-2:]
    total, weights = 0.0, 0.0
    for dy, dx, w in NEIGHBOURS:
        if 0 <= y + dy < height and 0 <= x + dx < width:
            total, weights = total + w * image[:, y + dy, x + dx], weights + w
    return total / weights


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), removed=st.floats(0.05, 0.95), channels=st.sampled_from([1, 3]))
def test_impute_keeps_kept_pixels_and_fills_without_a_step_at_the_border(seed: int, removed: float, channels: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.random((channels, 12, 14))
    keep = rng.random((12, 14)) > removed
    keep[0, 0] = True  # at least one kept pixel
    exact = impute(image, keep, noise=0.0)
    assert np.array_equal(exact[:, keep], image[:, keep])
    kept = image[:, keep]
    assert (exact[:, ~keep] >= kept.min(1, keepdims=True) - 1e-9).all() and (exact[:, ~keep] <= kept.max(1, keepdims=True) + 1e-9).all()
    for y, x in zip(*np.nonzero(~keep)):
        assert np.allclose(exact[:, y, x], _neighbour_mean(exact, y, x), atol=1e-9)
    # the removed pixels' own values are never read
    scrambled = image.copy()
    scrambled[:, ~keep] = rng.random((channels, int((~keep).sum())))
    assert np.array_equal(impute(scrambled, keep, noise=0.0), exact)
    # with noise: within the noise of the exact fill, still inside the kept range, seeded
    noisy = impute(image, keep, noise=0.01, rng=np.random.default_rng(1))
    assert np.abs(noisy - exact).max() <= 0.06
    assert (noisy[:, ~keep] >= kept.min(1, keepdims=True) - 1e-9).all() and (noisy[:, ~keep] <= kept.max(1, keepdims=True) + 1e-9).all()
    assert np.array_equal(noisy, impute(image, keep, noise=0.01, rng=np.random.default_rng(1)))


def test_impute_leaves_no_edge_where_zero_and_blur_fills_do() -> None:
    """A flat grey image with a square removed: the impute fill continues the grey, the zero fill
    draws the square."""
    images = torch.full((1, 1, 16, 16), 0.6)
    keep = torch.ones(1, 16, 16, dtype=torch.bool)
    keep[0, 4:12, 4:12] = False
    assert torch.allclose(fill_removed(images, keep, "impute", impute_noise=0.0), images)
    assert fill_removed(images, keep, "zero")[0, 0, 8, 8] == 0


def test_impute_fill_of_a_stored_uint8_set_is_seeded_per_round_and_image() -> None:
    images = (torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    keep = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.3
    a = fill_stored(images, keep, "impute", noise_seed=(0, 1), impute_noise=0.05)
    assert a.dtype == torch.uint8 and torch.equal(a[keep.unsqueeze(1)], images[keep.unsqueeze(1)])
    assert torch.equal(a, fill_stored(images, keep, "impute", chunk=2, noise_seed=(0, 1), impute_noise=0.05))
    assert not torch.equal(a, fill_stored(images, keep, "impute", noise_seed=(0, 2), impute_noise=0.05))


@pytest.mark.slow
@pytest.mark.parametrize(("method", "removed"), [(m, "label") for m in RANDOM] + [("oracle", "ignore")])
def test_random_control_masks_are_identical_on_resume(make_cfg, tmp_path: Path, method: str, removed: str) -> None:
    # the oracle's ties are drawn from (seed, round, image) too; removed=ignore rebuilds the targets on resume
    common = (
        f"reduction.method={method}",
        f"reduction.removed={removed}",
        "reduction.fill=impute",
        "reduction.rounds=2",
        "reduction.epochs_per_round=2",
        "callbacks.model_checkpoint.save_top_k=-1",
        "callbacks.model_checkpoint.save_weights_only=false",
        "test=false",
        *FAST,
    )
    train(make_cfg("train", *common))
    uninterrupted = rounds_csv(tmp_path)
    assert [float(r["kept_fraction"]) for r in uninterrupted] == pytest.approx([0.9, 0.81], abs=0.01)
    resumed_dir = tmp_path / "resumed"
    cfg = make_cfg("train", *common, f"ckpt_path={tmp_path / 'checkpoints' / 'epoch_002.ckpt'}")
    cfg.paths.output_dir = str(resumed_dir)
    train(cfg)
    resumed = rounds_csv(resumed_dir)
    assert [r["masks_sha256"] for r in resumed] == [r["masks_sha256"] for r in uninterrupted]
    # the resumed run trained on the same filled images (impute noise included): same validation
    assert [r["val/loss"] for r in resumed] == [r["val/loss"] for r in uninterrupted]
    # a different seed draws different masks
    other = make_cfg("train", *common, "seed=7")
    other.paths.output_dir = str(tmp_path / "other")
    train(other)
    assert rounds_csv(tmp_path / "other")[0]["masks_sha256"] != uninterrupted[0]["masks_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("method", RANDOM)
def test_random_control_masks_are_identical_on_two_ddp_ranks(tmp_path: Path, method: str) -> None:
    saved, digest, output = ddp_reduction_round(tmp_path, f"reduction.method={method}")
    assert f"masks sha256 {digest} (rank 0 of 2)" in output and f"masks sha256 {digest} (rank 1 of 2)" in output
    # equal to the draws of one process, for any batch split
    expected = keep_mask(maps(method, torch.arange(len(saved)), seed=42, round_=0, size=32), torch.ones(len(saved), 32, 32, dtype=torch.bool), 90)
    assert np.array_equal(saved, expected.numpy())
