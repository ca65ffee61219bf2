"""Free class activation maps, temperature scaling, signal quality, and FLOPs accounting that
agrees with torch's flop counter for every kind of policy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from src.early_exit.calibration import expected_calibration_error, fit_temperature
from src.early_exit.cam import class_activation_map
from src.early_exit.costs import measure_costs
from src.early_exit.policies import POLICIES, early_exit_predict
from src.early_exit.quality import aurc, signal_quality
from src.early_exit.scores import exit_head_features
from tests.helpers.small_models import classifier


@pytest.mark.parametrize("head", ["pool_linear", "conv_pool_linear"])
def test_cam_equals_the_hand_computed_weighted_sum_and_averages_to_the_logit(head: str) -> None:
    module = classifier(head=head)
    images = torch.rand(3, 1, 32, 32)
    target = torch.tensor([0, 2, 1])
    for k in range(module.net.num_exits):
        features = exit_head_features(module, images, k)  # (N, C, h, w)
        weights, bias = module.net.heads[k].linear.weight, module.net.heads[k].linear.bias
        by_hand = torch.zeros(3, *features.shape[-2:])
        for n in range(3):
            for c in range(features.shape[1]):
                by_hand[n] += weights[target[n], c] * features[n, c]
        # without the ReLU, the map's mean plus the bias is exactly the exit's logit
        logits = module(images)[k]
        assert torch.allclose(by_hand.mean((1, 2)) + bias[target], logits[torch.arange(3), target], atol=1e-5)
        expected = F.interpolate(by_hand.relu()[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
        assert torch.allclose(class_activation_map(module.net.heads[k], features, target, (32, 32)), expected, atol=1e-5)


def test_temperature_scaling_lowers_the_ece_of_an_over_confident_classifier() -> None:
    generator = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=generator)
    labels = torch.multinomial(true_logits.softmax(1), 1, generator=generator)[:, 0]
    over_confident = 4.0 * true_logits  # same ranking, claims far more certainty
    temperature = fit_temperature(over_confident[:2000], labels[:2000])
    assert 3.0 < temperature < 5.0
    before = expected_calibration_error(over_confident[2000:], labels[2000:])
    after = expected_calibration_error(over_confident[2000:], labels[2000:], temperature)
    assert before > 0.15 and after < 0.05 and after < before / 4


def test_signal_quality_ranks_a_perfect_signal_first() -> None:
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    predictions = torch.tensor([[0, 1, 0, 1, 1, 0]])  # wrong at 2 and 3
    perfect = torch.tensor([[0.9, 0.8, 0.1, 0.2, 0.7, 0.95]])
    (row,) = signal_quality({"confidence": perfect}, predictions, labels)
    assert row["auroc"] == 1.0 and row["accuracy"] == pytest.approx(4 / 6)
    assert row["aurc"] == pytest.approx(aurc(perfect[0], predictions[0] == labels)) and row["aurc"] < aurc(-perfect[0], predictions[0] == labels)
    (entropy,) = signal_quality({"entropy": -perfect}, predictions, labels)  # lower entropy = surer
    assert entropy["auroc"] == 1.0


def _flops_of(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _leaving_at(head: str, e: int):
    """A net whose exits before ``e`` are blank (uniform prediction, flat map: no signal passes)
    and whose exit ``e`` is sure of class 0 with a non-flat map: every sample leaves at ``e``."""
    module = classifier(head=head)
    with torch.no_grad():
        for k, exit_head in enumerate(module.net.heads[: e + 1]):
            if k < e:
                exit_head.linear.weight.zero_()
                exit_head.linear.bias.zero_()
            else:  # features are >= 0 (ReLU), so positive weights give a non-flat CAM of class 0
                exit_head.linear.bias.copy_(torch.tensor([20.0, 0.0, 0.0]))
                exit_head.linear.weight[0].abs_()
    return module


# leave when confidence >= 0.9 and/or the map's entropy <= 0.9999 (a flat map has exactly 1)
THRESHOLDS = {
    "confidence": 0.9,
    "calibrated_confidence": 0.9,
    "saliency_entropy": 0.9999,
    "calibrated_confidence_and_saliency_entropy": (0.9, 0.9999),
}


@pytest.mark.slow
@pytest.mark.parametrize("policy", list(THRESHOLDS))
@pytest.mark.parametrize("head", ["pool_linear", "conv_pool_linear"])
def test_the_flops_charged_for_each_exit_are_what_torch_counts(policy: str, head: str) -> None:
    p, temperatures = POLICIES[policy], [1.3, 1.1, 0.9, 1.0]
    image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    for e in range(4):
        module = _leaving_at(head, min(e, 2)) if e < 3 else classifier(head=head)
        threshold = THRESHOLDS[policy] if e < 3 else ((2.0, 0.0) if p.gate else (2.0 if p.higher_exits else -1.0))  # e = 3: nothing passes
        _, taken = early_exit_predict(module, image, p, threshold, "cam", temperatures)
        assert taken.item() == e
        costs = measure_costs(module, image, "cam")
        assert _flops_of(lambda module=module, threshold=threshold: early_exit_predict(module, image, p, threshold, "cam", temperatures)) == costs.cost_of_exit(
            p, e
        )


@pytest.mark.slow
def test_a_cam_costs_under_5_percent_of_its_exit() -> None:
    for head in ("pool_linear", "conv_pool_linear"):
        costs = measure_costs(classifier(head=head), torch.rand(1, 1, 32, 32), "cam")
        for e in range(4):
            ratio = costs.cost_of_exit(POLICIES["saliency_entropy"], e) / costs.cost_of_exit(POLICIES["confidence"], e)
            assert 1.0 < ratio <= 1.05, (head, e, ratio)
        gradcam = measure_costs(classifier(head=head), torch.rand(1, 1, 32, 32), "gradcam")
        assert gradcam.saliency[0] > 10 * costs.saliency[0]
