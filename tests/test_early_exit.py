"""Early-exit CNN: exits, real early stopping at inference, FLOP accounting, policies, and the
whole evaluation through the training entry point."""

import csv
import json
from pathlib import Path

import pytest
import torch

from src.config.errors import UserInputError
from src.config.schemas import with_defaults
from src.early_exit.costs import measure_costs
from src.early_exit.policies import POLICIES, early_exit_predict, get_policy
from src.early_exit.scores import record_exits
from src.early_exit.thresholds import operating_point
from src.models.early_exit_cnn import EarlyExitCNN
from src.train import train
from tests.helpers.small_models import classifier

SMALL_DATA = ("data.n_per_class=24", "data.batch_size=16")


def loader(n: int = 24):
    torch.manual_seed(1)
    images, labels = torch.rand(n, 1, 32, 32), torch.randint(0, 3, (n,))
    return [{"image": images[i : i + 8], "label": labels[i : i + 8]} for i in range(0, n, 8)]


def test_every_exit_gives_class_logits() -> None:
    net = with_defaults(EarlyExitCNN, 1, 5, stages=3, base_width=4, exit_stages=[0, 2], head="pool_linear")
    outputs = net(torch.rand(2, 1, 32, 32))
    assert len(outputs) == 2 and all(o.shape == (2, 5) for o in outputs)


def test_flops_grow_with_depth() -> None:
    module = classifier()
    costs = measure_costs(module, torch.rand(1, 1, 32, 32), "gradcam")
    assert all(c > 0 for c in costs.stages + costs.heads + costs.saliency)
    for policy in ("confidence", "saliency_entropy"):
        per_exit = [costs.cost_of_exit(POLICIES[policy], e) for e in range(4)]
        assert per_exit == sorted(per_exit) and len(set(per_exit)) == 4
    assert costs.cost_of_exit(POLICIES["confidence"], 3) > costs.full_network  # side heads cost extra


def test_a_sample_that_exits_early_skips_the_later_stages() -> None:
    module = classifier()
    calls = []
    module.net.stages[-1].register_forward_hook(lambda *_: calls.append(1))
    images = torch.rand(6, 1, 32, 32)
    predictions, taken = early_exit_predict(module, images, get_policy("confidence"), threshold=float("-inf"))
    assert calls == [] and taken.tolist() == [0] * 6
    assert torch.equal(predictions, module(images)[0].argmax(1))
    calls.clear()
    early_exit_predict(module, images, get_policy("confidence"), threshold=float("inf"))
    assert calls == [1]  # never exiting early: the last stage runs, once, on the whole batch


@pytest.mark.slow
@pytest.mark.parametrize("policy", [p for p in POLICIES if not POLICIES[p].oracle])
def test_threshold_extremes_give_first_and_last_exit_accuracy(policy: str) -> None:
    module = classifier()
    data = loader()
    record = record_exits(module, data, "gradcam")
    record.temperatures = torch.tensor([1.5, 1.2, 1.0, 0.8])
    signals = record.signals()
    costs = measure_costs(module, torch.rand(1, 1, 32, 32), "gradcam")
    exit_acc = [(record.predictions[e] == record.labels).float().mean().item() for e in range(4)]
    p = POLICIES[policy]
    always, never = (float("-inf"), float("inf")) if p.higher_exits else (float("inf"), float("-inf"))
    if p.gate is not None:  # a gate at +inf lets every sample through
        always, never = (always, float("inf")), (never, float("inf"))
    first = operating_point(record, signals, costs, p, always)
    last = operating_point(record, signals, costs, p, never)
    assert last["accuracy"] == exit_acc[3] and last["exit3_fraction"] == 1.0
    if policy != "coherence_prev":  # exit 0 has no previous map: the earliest it can leave is exit 1
        assert first["accuracy"] == exit_acc[0] and first["exit0_fraction"] == 1.0
    else:
        assert first["accuracy"] == exit_acc[1] and first["exit1_fraction"] == 1.0
    images = torch.cat([b["image"] for b in data])
    for threshold, expected in ((always, first), (never, last)):
        predictions, _ = early_exit_predict(module, images, p, threshold, "gradcam", record.temperatures.tolist())
        assert (predictions == record.labels).float().mean().item() == expected["accuracy"]


def test_real_early_exit_matches_the_simulation_in_between() -> None:
    module = classifier()
    data = loader()
    record = record_exits(module, data, "gradcam")
    threshold = record.signals()["confidence"][0].median().item()
    predictions, taken = early_exit_predict(module, torch.cat([b["image"] for b in data]), POLICIES["confidence"], threshold)
    expected_exits = record.signals()["confidence"][:-1] >= threshold
    first = torch.where(expected_exits.any(0), expected_exits.float().argmax(0), torch.tensor(3)).long()
    assert torch.equal(taken, first)
    assert torch.equal(predictions, record.predictions.gather(0, first[None])[0])


def test_bad_exit_settings_are_refused() -> None:
    with pytest.raises(UserInputError, match="5 exits .* only 4 stages"):
        with_defaults(EarlyExitCNN, 1, 2, stages=4, exit_stages=[0, 1, 2, 3, 3])
    with pytest.raises(UserInputError, match=r"exit stage\(s\) \[7\] out of range"):
        with_defaults(EarlyExitCNN, 1, 2, stages=4, exit_stages=[0, 7])
    with pytest.raises(UserInputError, match="must end with the last stage"):
        with_defaults(EarlyExitCNN, 1, 2, stages=4, exit_stages=[0, 1])
    with pytest.raises(UserInputError, match="unknown exit policy 'softmax'"):
        get_policy("softmax")
    with pytest.raises(UserInputError, match="oracle"):
        early_exit_predict(classifier(), torch.rand(1, 1, 32, 32), POLICIES["coherence_final_oracle"], 0.5)


@pytest.mark.slow
def test_bad_exit_config_stops_before_training(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        train(make_cfg("train", "model=early_exit_cnn", "data=eliret_cls", "model.net.exit_stages=[0,9]", *SMALL_DATA))
    assert "out of range" in str(info.value)
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_training_entry_point_writes_the_early_exit_report(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "train",
        "model=early_exit_cnn",
        "data=eliret_cls",
        "trainer.max_epochs=1",
        "model.net.base_width=4",
        "early_exit.timing_samples=4",
        *SMALL_DATA,
    )
    metrics = train(cfg)
    assert {f"test/acc_exit{e}" for e in range(4)} <= set(metrics)
    assert json.loads((tmp_path / "metrics.json").read_text())["test/acc_exit3"] == pytest.approx(metrics["test/acc_exit3"])
    out = tmp_path / "early_exit"
    for name in ("curves.csv", "chosen.csv", "signal_quality.csv", "calibration.csv", "tradeoff.png", "signal_quality.png", "saliency_exits.png"):
        assert (out / name).stat().st_size > 100, name
    with open(out / "curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["policy"] for r in rows} == set(POLICIES) and {r["split"] for r in rows} == {"val", "test"}
    # every signal's AUROC/AURC at every exit, ECE before/after per exit, CAM maps within 5% of the exit's cost
    for e in range(3):
        assert {f"test/auroc_exit{e}/confidence", f"test/aurc_exit{e}/saliency_entropy", f"test/ece_exit{e}_after"} <= set(metrics)
        assert 1.0 < metrics[f"early_exit/saliency_cost_ratio_exit{e}"] <= 1.05
    assert not (tmp_path / "reduction").exists()  # classification trains once


@pytest.mark.slow
def test_early_exit_results_reach_the_logger(make_cfg, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_cfg(
        "train",
        "model=early_exit_cnn",
        "data=eliret_cls",
        "trainer.max_epochs=1",
        "model.net.base_width=4",
        "early_exit.timing_samples=4",
        "logger=tensorboard",
        *SMALL_DATA,
    )
    train(cfg)
    accumulator = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    assert {"early_exit/tradeoff", "early_exit/saliency_exits"} <= set(accumulator.Tags()["images"])
    assert "early_exit/confidence/test_flops_saving" in accumulator.Tags()["scalars"]


@pytest.mark.slow
def test_segmentation_model_on_classification_data_is_refused(make_cfg) -> None:
    with pytest.raises(UserInputError, match="use model=early_exit_cnn"):
        train(make_cfg("train", "data=eliret_cls", *SMALL_DATA))


@pytest.mark.slow
def test_pet_species_classification_trains(make_cfg, tmp_path: Path) -> None:
    from tests.helpers.pet_sets import make_pet

    base = make_pet(tmp_path / "data", size=(32, 32))
    cfg = make_cfg(
        "train",
        "model=early_exit_cnn",
        "data=pet_cls",
        f"data.data_dir={base}",
        "data.image_size=32",
        "trainer.max_epochs=1",
        "model.net.base_width=4",
        "early_exit.timing_samples=2",
        "data.batch_size=4",
    )
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0
