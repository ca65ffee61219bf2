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


def spatial(weights: np.ndarray, bias: float) -> nn.Conv2d:
    """A 3x3 convolution from one channel to one logit: each output pixel reads its neighbours."""
    conv = nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weights).float().view(1, 1, 3, 3))
        conv.bias.fill_(bias)
    return conv


def test_the_right_reasons_term_is_a_hand_computation_on_a_tiny_net() -> None:
    w = np.array([[0.2, -0.5, 0.1], [0.4, 1.0, -0.3], [0.0, 0.6, -0.2]])
    net = spatial(w, 0.1)
    images = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float32).requires_grad_(True)
    targets = torch.zeros(2, 6, 6, dtype=torch.long)
    targets[0, 2, 2] = targets[0, 2, 3] = 1  # two object pixels
    penalty = right_reasons_penalty(images, net(images), targets, margin=0)
    # by hand: s = mean over object pixels p of log sigmoid(z_p); ds/dx_q = mean_p (1 - sigmoid(z_p)) w[q - p + 1]
    x = np.pad(images.detach().numpy()[0, 0].astype(np.float64), 1)
    z = {p: (w * x[p[0] : p[0] + 3, p[1] : p[1] + 3]).sum() + 0.1 for p in ((2, 2), (2, 3))}
    gradient = np.zeros((6, 6))
    for (r, c), value in z.items():
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                gradient[r + dr, c + dc] += (1 - 1 / (1 + np.exp(-value))) * w[dr + 1, dc + 1] / len(z)
    outside = targets[0].numpy() == 0
    expected = (gradient[outside] ** 2).sum() / outside.sum() / 2  # image 1 has no object: it adds 0
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    # its gradients flow to the weights (create_graph): the model can learn from it
    penalty.backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


def test_the_right_reasons_term_is_zero_where_the_object_outputs_gradient_outside_is() -> None:
    images = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    targets = (torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(2)) > 0.7).long()
    # a net blind to its input: no gradient anywhere
    blind = pointwise([0.0, 0.0], [0.3, -0.1])
    assert right_reasons_penalty(images, blind(images), targets, margin=0).item() == 0
    # each output pixel reads its own input pixel: the object outputs' reasons lie on the object,
    # however much the background outputs read the background (segmentation itself is not penalised)
    seeing = pointwise([1.5, -0.5], [0.0, 0.0])
    assert right_reasons_penalty(images, seeing(images), targets, margin=0).item() == 0
    # a net whose outputs read the neighbours is penalised, one-channel outputs and float targets alike
    wide = spatial(np.full((3, 3), 0.5), 0.0)
    assert right_reasons_penalty(images, wide(images), targets.float().unsqueeze(1), margin=0).item() > 0
    # ignored pixels count as neither object nor background
    ignored = torch.full_like(targets, 255)
    assert right_reasons_penalty(images, wide(images), ignored, margin=0, ignore_index=255).item() == 0


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
