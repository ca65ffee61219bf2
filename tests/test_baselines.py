"""The baselines that use the ground truth like the oracle: Right for the Right Reasons and
background randomisation."""

import numpy as np
import pytest
import torch
from torch import nn

from src.config.errors import UserInputError
from src.config.schemas import check_ranges
from src.jobs.builders import build_callbacks, build_datamodule, build_model, build_trainer
from src.models.losses import right_reasons_penalty
from src.reduction.background_swap import BackgroundRandomisation, swap_backgrounds
from src.reduction.relevance import object_pixels
from tests.helpers.fast import FAST


def pointwise(weights: list[float], biases: list[float]) -> nn.Conv2d:
    """A 1x1 convolution from one channel to len(weights) classes: each pixel's logits depend on that pixel alone."""
    conv = nn.Conv2d(1, len(weights), 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights).view(-1, 1, 1, 1))
        conv.bias.copy_(torch.tensor(biases))
    return conv


def test_the_right_reasons_term_is_a_hand_computation_on_a_pointwise_net() -> None:
    w, b = np.array([0.7, -1.3, 0.4]), np.array([0.1, 0.0, -0.2])
    net = pointwise(w.tolist(), b.tolist())
    images = torch.rand(2, 1, 7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float32).requires_grad_(True)
    targets = torch.zeros(2, 7, 7, dtype=torch.long)
    targets[0, 3, 3] = 1  # one object pixel; with margin 1 its 4-neighbours are near too
    targets[1, 0:2, 0:2] = 2
    penalty = right_reasons_penalty(images, net(images), targets, margin=1)
    # by hand: sum_k log p_k = sum_k l_k - K logsumexp(l), so d/dx = sum_k w_k - K sum_k p_k w_k
    x = images.detach().numpy()[:, 0].astype(np.float64)
    logits = w[None, :, None, None] * x[:, None] + b[None, :, None, None]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    gradient = w.sum() - 3 * (p * w[None, :, None, None]).sum(1)
    rows, cols = np.mgrid[0:7, 0:7]
    near = np.zeros((2, 7, 7), dtype=bool)
    for n in range(2):
        for r, c in zip(*np.nonzero(targets[n].numpy())):
            near[n] |= (rows - r) ** 2 + (cols - c) ** 2 <= 1
    expected = ((gradient * ~near) ** 2).sum((1, 2)).mean()
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    # its gradients flow to the weights (create_graph): the model can learn from it
    penalty.backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


def test_the_right_reasons_term_is_zero_where_the_input_gradient_outside_the_objects_is() -> None:
    images = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    targets = (torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(2)) > 0.7).long()
    # a net blind to its input: no gradient anywhere
    blind = pointwise([0.0, 0.0], [0.3, -0.1])
    assert right_reasons_penalty(images, blind(images), targets, margin=0).item() == 0
    # a net that looks only at the object pixels (the input masked by the objects): none outside
    seeing = pointwise([1.5, -0.5], [0.0, 0.0])
    masked = images * (targets > 0).unsqueeze(1)
    assert right_reasons_penalty(images, seeing(masked), targets, margin=0).item() == 0
    # one-channel outputs (binary, regression) and (N, 1, H, W) float targets read the same way
    single = pointwise([2.0], [0.0])
    value = right_reasons_penalty(images, single(images), targets.float().unsqueeze(1), margin=0)
    assert value.item() > 0
    # ignored pixels count as neither object nor background
    ignored = torch.full_like(targets, 255)
    assert right_reasons_penalty(images, single(images), ignored, margin=0, ignore_index=255).item() == 0


def test_background_swap_keeps_each_object_and_takes_the_rest_from_another_image() -> None:
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (10, 1, 12, 12), generator=generator, dtype=torch.uint8)
    targets = torch.zeros(10, 12, 12, dtype=torch.long)
    for i in range(10):
        targets[i, i % 5 : i % 5 + 4, 2 + i % 4 : 6 + i % 4] = 1 + i % 2
    objects = object_pixels(targets, background_class=0)
    out, donors = swap_backgrounds(images, objects, share=1.0, seed=7, impute_noise=0.01)
    assert out.dtype == images.dtype
    for i in range(10):
        donor = int(donors[i])
        assert donor != i
        assert torch.equal(out[i][:, objects[i]], images[i][:, objects[i]])  # the object's own pixels
        elsewhere = ~objects[i] & ~objects[donor]
        assert torch.equal(out[i][:, elsewhere], images[donor][:, elsewhere])  # the donor's background
        # where the donor had its object, the donor's object is gone (imputed from its background)
        hole = ~objects[i] & objects[donor]
        assert hole.any() and not torch.equal(out[i][:, hole], images[donor][:, hole])
    # the same seed, the same set; a share swaps that fraction of the images, the rest untouched
    again, same = swap_backgrounds(images, objects, share=1.0, seed=7, impute_noise=0.01)
    assert torch.equal(again, out) and torch.equal(same, donors)
    half, donors = swap_backgrounds(images, objects, share=0.5, seed=7, impute_noise=0.01)
    changed = donors != torch.arange(10)
    assert int(changed.sum()) == 5 and torch.equal(half[~changed], images[~changed])


@pytest.mark.slow
def test_background_swap_trains_on_the_swapped_set_with_its_labels(make_cfg, tmp_path) -> None:
    # its own data dir: the session's eliret set has another size
    cfg = make_cfg(
        "train",
        "background_swap=mixed_rand",
        "reduction=none",
        f"paths.data_dir={tmp_path / 'data'}",
        "data.n_per_class=8",
        "trainer.max_epochs=1",
        "test=false",
        *FAST,
    )
    datamodule = build_datamodule(cfg)
    callbacks = build_callbacks(cfg)
    assert isinstance(callbacks[0], BackgroundRandomisation) and callbacks[0].seed == cfg.seed
    build_trainer(cfg, callbacks, []).fit(build_model(cfg, datamodule), datamodule=datamodule)
    served = datamodule.train_set
    original = build_datamodule(cfg)
    original.prepare_data()
    original.setup("fit")
    expected, _ = swap_backgrounds(original.train_set.images, object_pixels(original.train_set.masks, 0), 1.0, cfg.seed, cfg.background_swap.impute_noise)
    assert torch.equal(served.images, expected) and not torch.equal(served.images, original.train_set.images)
    assert torch.equal(served.masks, original.train_set.masks)  # labels untouched


def test_a_background_share_out_of_range_is_refused_at_composition(make_cfg) -> None:
    with pytest.raises(UserInputError, match=r"background_swap.share=1.5 must be in \[0, 1\]"):
        check_ranges(make_cfg("train", "background_swap=mixed_rand", "background_swap.share=1.5"))
