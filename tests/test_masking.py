"""Property tests of the reduction's masking (exact quota, monotone, idempotent) and its fills."""

import math
from decimal import Decimal

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as TF

from src.config.errors import TrainingDiverged
from src.reduction.blur import gaussian_blur
from src.reduction.masking import fill_removed, keep_mask, quota
from src.reduction.packed import pack, unpack

shapes = st.tuples(st.integers(1, 4), st.integers(1, 12), st.integers(1, 12))
percentiles = st.one_of(st.sampled_from([0.5, 7.0, 10.0, 50.0, 90.0, 99.9, 100.0]), st.floats(0.01, 100.0))


def relevance_for(shape, seed: int, kind: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if kind == "constant":
        return torch.zeros(shape)
    if kind == "ties":  # few distinct values: many ties
        return torch.randint(0, 3, shape, generator=generator).float()
    return torch.rand(shape, generator=generator)


@settings(max_examples=200, deadline=None)
@given(shapes, percentiles, st.integers(0, 2**16), st.sampled_from(["random", "ties", "constant"]))
def test_keeps_exactly_the_quota_of_present_pixels(shape, percentile, seed, kind) -> None:
    relevance = relevance_for(shape, seed, kind)
    present = torch.rand(shape, generator=torch.Generator().manual_seed(seed + 1)) < 0.8
    keep = keep_mask(relevance, present, percentile)
    for i in range(shape[0]):
        n = int(present[i].sum())
        assert int(keep[i].sum()) == math.ceil(Decimal(str(percentile)) * n / 100)
    assert not (keep & ~present).any()


@settings(max_examples=100, deadline=None)
@given(shapes, percentiles, st.integers(0, 2**16), st.integers(1, 5))
def test_cumulative_masks_are_monotone(shape, percentile, seed, rounds) -> None:
    present = torch.ones(shape, dtype=torch.bool)
    for r in range(rounds):
        keep = keep_mask(relevance_for(shape, seed + r, "random"), present, percentile)
        assert not (keep & ~present).any()  # never re-adds a pixel
        present = keep


@settings(max_examples=100, deadline=None)
@given(shapes, st.integers(0, 2**16), st.sampled_from(["random", "ties", "constant"]))
def test_percentile_100_is_idempotent(shape, seed, kind) -> None:
    present = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.7
    keep = keep_mask(relevance_for(shape, seed, kind), present, 100.0)
    assert torch.equal(keep, present)
    assert torch.equal(keep_mask(relevance_for(shape, seed + 1, kind), keep, 100.0), keep)


def test_the_most_relevant_pixels_are_kept_and_ties_break_by_position() -> None:
    relevance = torch.tensor([[[0.1, 0.9], [0.5, 0.3]]])
    present = torch.ones(1, 2, 2, dtype=torch.bool)
    assert keep_mask(relevance, present, 50).tolist() == [[[False, True], [True, False]]]
    constant = keep_mask(torch.zeros(1, 2, 2), present, 50)
    assert constant.tolist() == [[[True, True], [False, False]]]  # first pixels in row-major order


@settings(max_examples=50, deadline=None)
@given(shapes, percentiles, st.integers(0, 2**16))
def test_a_nan_anywhere_in_a_relevance_map_is_refused_naming_the_image(shape, percentile, seed) -> None:
    relevance = relevance_for(shape, seed, "random")
    generator = torch.Generator().manual_seed(seed)
    image = int(torch.randint(shape[0], (), generator=generator))
    relevance[image, int(torch.randint(shape[1], (), generator=generator)), int(torch.randint(shape[2], (), generator=generator))] = float("nan")
    with pytest.raises(TrainingDiverged, match=rf"1 of {shape[0]} images \(batch positions {image}\) contain NaN"):
        keep_mask(relevance, torch.ones(shape, dtype=torch.bool), percentile)


def test_quota_has_no_float_rounding_error() -> None:
    assert quota(7, 100) == 7  # 0.07 * 100 = 7.000000000000001 in floats
    assert quota(90, 1024) == 922 and quota(90, 922) == 830 and quota(90, 830) == 747


def test_three_rounds_of_90_keep_0_9_0_81_0_729() -> None:
    present = torch.ones(1, 32, 32, dtype=torch.bool)
    fractions = []
    for _ in range(3):
        present = keep_mask(torch.rand(1, 32, 32), present, 90)
        fractions.append(present.float().mean().item())
    assert [round(f, 2) for f in fractions] == [0.9, 0.81, 0.73]


def test_fills() -> None:
    images = torch.rand(2, 3, 16, 16)
    keep = torch.rand(2, 16, 16) > 0.5
    for fill in ("zero", "mean", "blur"):
        filled = fill_removed(images, keep, fill)
        assert torch.equal(filled[keep.unsqueeze(1).expand_as(images)], images[keep.unsqueeze(1).expand_as(images)])
    assert (fill_removed(images, keep, "zero")[~keep.unsqueeze(1).expand_as(images)] == 0).all()
    mean = fill_removed(images, keep, "mean")
    assert torch.allclose(mean[0, 1][~keep[0]], images[0, 1].mean().expand(int((~keep[0]).sum())))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 70), st.integers(2, 70), st.integers(0, 2**16), st.sampled_from([1, 3]))
def test_the_blur_fill_equals_torchvisions_blur(height, width, seed, channels) -> None:
    """The blur as two matrix products is torchvision's (reflect-padded) Gaussian blur, at every
    size the fill meets (non-square ones included) and every share of removed pixels, from one
    pixel to all of them."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(3, channels, height, width, generator=generator)
    side = min(height, width)
    kernel = max(3, (side // 4) | 1)
    expected = TF.gaussian_blur(images, [kernel, kernel], [kernel / 3.0, kernel / 3.0])
    assert (gaussian_blur(images, kernel, kernel / 3.0) - expected).abs().max() < 1e-5
    keep = torch.ones(3, height, width, dtype=torch.bool)
    keep[0, 0, 0] = False  # one pixel removed
    keep[1] = torch.rand(height, width, generator=generator) < 0.05  # about 95% removed
    keep[2] = False  # all of them
    filled = fill_removed(images, keep, "blur")
    assert (filled - torch.where(keep.unsqueeze(1), images, expected)).abs().max() < 1e-5


def test_a_blur_kernel_reflect_padding_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 5 wide"):
        gaussian_blur(torch.rand(1, 1, 3, 8), 7, 2.0)


def test_impute_solves_only_an_images_own_pixels_on_a_larger_canvas() -> None:
    generator = torch.Generator().manual_seed(3)
    alone = torch.rand(1, 3, 9, 13, generator=generator)
    keep = torch.rand(1, 9, 13, generator=generator) < 0.4
    canvas = torch.rand(1, 3, 16, 20, generator=generator)  # padding with values of its own
    canvas[:, :, :9, :13] = alone
    own = torch.zeros(1, 16, 20, dtype=torch.bool)
    own[:, :9, :13] = True
    filled = fill_removed(canvas, own & F.pad(keep, (0, 7, 0, 7)), "impute", valid=own)
    assert torch.equal(filled[:, :, :9, :13], fill_removed(alone, keep, "impute"))  # as if the image were alone
    assert torch.equal(filled[:, :, 9:], canvas[:, :, 9:]) and torch.equal(filled[..., 13:], canvas[..., 13:])  # padding untouched
    with pytest.raises(ValueError, match="top-left corner"):
        fill_removed(canvas, own, "impute", valid=own.flip(-1))


@settings(max_examples=50, deadline=None)
@given(shapes, st.integers(0, 2**16))
def test_packed_masks_round_trip_at_one_bit_per_pixel(shape, seed) -> None:
    masks = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.5
    stored = pack(masks)
    assert stored["bits"].dtype == torch.uint8 and stored["bits"].shape == (shape[0], math.ceil(shape[1] * shape[2] / 8))
    assert torch.equal(unpack(stored), masks)
