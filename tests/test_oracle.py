"""The positive control (relevance from the ground truth) and removed=ignore."""

import hashlib
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from lightning.pytorch.callbacks import Callback
from scipy.ndimage import distance_transform_edt

from src.config.errors import UserInputError
from src.config.schemas import with_defaults
from src.data.eliret import EliretDataModule
from src.data.segmentation_dataset import SegmentationTensors
from src.data.shortcut import load_split
from src.jobs.builders import build_callbacks, build_datamodule, build_model, build_trainer
from src.reduction.callback import SaliencyReduction
from src.reduction.masking import keep_mask, quota
from src.reduction.relevance import RelevanceConfig, oracle_relevance, relevance_maps
from src.reduction.round import ignoring_removed, shard_masks
from src.reduction.round_outputs import read_masks
from src.storage.checkpoints import load_module
from tests.helpers.cli import run_cli
from tests.helpers.early import in_own_dir, started
from tests.helpers.fast import FAST
from tests.helpers.runs import ddp_reduction_round


def objects(n: int = 4, size: int = 24) -> torch.Tensor:
    """(n, size, size) class maps: a square of class 1 or 2 at a different place in each image."""
    targets = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        targets[i, 3 + i : 9 + i, 5 + 2 * i : 12 + 2 * i] = 1 + i % 2
    return targets


@pytest.mark.parametrize("margin", [0, 2])
def test_the_oracle_keeps_every_object_pixel_while_the_quota_allows(margin: int) -> None:
    targets = objects()
    relevance = oracle_relevance(targets, torch.arange(4), seed=0, round_=0, margin=margin)
    present = torch.ones_like(targets, dtype=torch.bool)
    grown = relevance >= 0  # the first group: the objects and their ring; every other pixel ranks below 0
    assert (grown >= (targets > 0)).all() and ((grown.sum((1, 2)) > (targets > 0).sum((1, 2))).all() == (margin > 0))
    for percentile in (90, 60, 30, 10, 3):
        kept = keep_mask(relevance, present, percentile)
        expected = quota(percentile, 24 * 24)
        assert (kept.sum((1, 2)) == expected).all()  # exactly the quota
        for image in range(4):
            if expected >= int(grown[image].sum()):
                assert kept[image][grown[image]].all()  # every object (and ring) pixel kept
            else:
                assert not kept[image][~grown[image]].any()  # the quota spent on the objects alone


def test_the_oracle_ranks_the_background_by_distance_to_the_object_nearest_first() -> None:
    targets = torch.zeros(1, 9, 9, dtype=torch.long)
    targets[0, 4, 4] = 1  # one object pixel in the middle
    for margin in (0, 1):
        relevance = oracle_relevance(targets, torch.tensor([0]), seed=2, round_=1, margin=margin)[0]
        rows, cols = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
        squared = ((rows - 4) ** 2 + (cols - 4) ** 2).flatten()
        squared = torch.where(squared <= margin**2, 0, squared)
        flat = relevance.flatten()
        # a nearer pixel always outranks a farther one; pixels at one distance differ only by the tie draw
        nearer = squared[:, None] < squared[None, :]
        assert (flat[:, None] > flat[None, :])[nearer].all()
        same = squared[:, None] == squared[None, :]
        assert ((flat[:, None] - flat[None, :]).abs()[same] < 0.5).all()
        # the quota is exact and kept pixels form a disk around the object
        for percentile in (5, 20, 50):
            kept = keep_mask(relevance[None], torch.ones(1, 9, 9, dtype=torch.bool), percentile)[0].flatten()
            assert kept.sum() == quota(percentile, 81)
            assert squared[kept].max() <= squared[~kept].min()
    # no object: a random order (the tie draw alone), still an exact quota
    empty = oracle_relevance(torch.zeros(1, 9, 9, dtype=torch.long), torch.tensor([0]), seed=2, round_=1, margin=0)
    assert keep_mask(empty, torch.ones(1, 9, 9, dtype=torch.bool), 30).sum() == quota(30, 81)


def test_the_oracle_reads_regression_targets_and_breaks_ties_from_seed_round_image() -> None:
    classes = objects()
    values = (classes > 0).float().unsqueeze(1)  # eliret's (N, 1, H, W) targets in [0, 1]
    ids = torch.tensor([7, 3, 9, 1])
    a = oracle_relevance(values, ids, seed=5, round_=2, margin=1)
    assert torch.equal(a, oracle_relevance(classes, ids, seed=5, round_=2, margin=1))
    # one image's map depends on its own (seed, round, id) only, not on its batch
    assert torch.equal(a[1:2], oracle_relevance(values[1:2], ids[1:2], seed=5, round_=2, margin=1))
    assert not torch.equal(a, oracle_relevance(values, ids, seed=5, round_=3, margin=1))
    with pytest.raises(ValueError, match="needs the images' ground truth"):
        relevance_maps(torch.nn.Identity(), values, RelevanceConfig(method="oracle"), ids)


@pytest.mark.parametrize("data", ["shortcut", "eliret"])
def test_removed_pixels_ignored_change_neither_the_loss_nor_its_gradients(make_cfg, data: str) -> None:
    def loss_and_grads(removed: str, targets: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        cfg = make_cfg("train", f"data={data}", f"reduction.removed={removed}", "data.n_train=8" if data == "shortcut" else "data.n_per_class=8")
        torch.manual_seed(0)
        model = build_model(cfg, build_datamodule(cfg))
        if removed == "ignore":
            targets = ignoring_removed(targets, keep, model.hparams.ignore_index)
        loss = model.loss_fn(model(images), targets, None)
        return loss.detach(), [p.detach().clone() for p in torch.autograd.grad(loss, list(model.parameters()))]

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 1, 32, 32, generator=generator)
    keep = torch.rand(2, 32, 32, generator=generator) < 0.6
    classes = torch.randint(0, 3 if data == "shortcut" else 2, (2, 32, 32), generator=generator)
    relabelled = torch.where(keep, classes, (classes + 1) % (3 if data == "shortcut" else 2))  # removed pixels only
    if data == "eliret":  # (N, 1, H, W) float targets
        classes, relabelled = classes.float().unsqueeze(1), relabelled.float().unsqueeze(1)
    for removed, same in (("ignore", True), ("label", False)):
        loss_a, grads_a = loss_and_grads(removed, classes)
        loss_b, grads_b = loss_and_grads(removed, relabelled)
        assert torch.equal(loss_a, loss_b) is same
        assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b)) is same


@pytest.mark.slow
def test_removed_ignore_trains_on_targets_unlabelled_where_removed(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "train", "data=shortcut", f"data.data_dir={tmp_path / 'shortcut'}", "data.n_train=20", "data.n_val=10", "data.n_test=10", "reduction.method=oracle", "reduction.removed=ignore",
        "reduction.rounds=2", "reduction.epochs_per_round=1", "reduction.percentile=70", "test=false", *FAST,
    )  # fmt: skip
    datamodule = build_datamodule(cfg)
    callbacks = build_callbacks(cfg)
    trainer = build_trainer(cfg, callbacks, [])
    trainer.fit(build_model(cfg, datamodule), datamodule=datamodule)
    reduction = next(c for c in callbacks if isinstance(c, SaliencyReduction))
    served = datamodule.train_set.masks
    original = reduction._original_targets
    assert (served[~reduction.masks] == 255).all()
    assert torch.equal(served[reduction.masks], original[reduction.masks])
    # every object pixel survives 0.7 x 0.7 = 0.49 of the image on these small objects
    assert (reduction.masks >= (original > 0)).all()
    assert torch.equal(datamodule.splits["val"].masks.unique(), torch.tensor([0, 1, 2]))  # validation untouched
    # the model-free measures of each round: the oracle keeps what the oracle keeps; the stripes
    # (no guard band) lie next to the objects, so the oracle's ring keeps some of them
    assert [row["oracle_keep_iou"] for row in reduction.history] == [1.0, 1.0]
    assert all(0 < row["cue_share"] < 1 for row in reduction.history)


@in_own_dir
def oracle_ddp_round(path: Path) -> tuple[Path, np.ndarray, str, str]:
    """The oracle's round trained by two gloo ranks (started with the suite, on its lane)."""
    return (path, *ddp_reduction_round(path, "reduction.method=oracle", "seed=3"))


@pytest.mark.slow
@pytest.mark.started_early("oracle_ddp_round", serial=True)
def test_the_oracle_is_identical_across_two_ddp_ranks(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp_path, saved, digest, output = started(oracle_ddp_round, tmp_path_factory).result()
    assert f"masks sha256 {digest} (rank 0 of 2)" in output and f"masks sha256 {digest} (rank 1 of 2)" in output
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    module = load_module(run / "checkpoints" / "last.ckpt")
    datamodule = with_defaults(EliretDataModule, str(tmp_path / "data" / "eliret"))
    datamodule.setup()
    images, targets = datamodule.train_set.images, datamodule.train_set.masks
    present = torch.ones(len(images), 32, 32, dtype=torch.bool)
    shard = shard_masks(module, images, present, 90, RelevanceConfig(method="oracle", seed=3), 16, targets=targets)
    assert hashlib.sha256(shard.masks.numpy().tobytes()).hexdigest() == digest
    assert (torch.from_numpy(saved) >= (targets[:, 0] > 0.5)).all()  # 90% of the image holds every object pixel


class FirstEpochWeights(Callback):
    """The model's weights as the first training epoch starts (after every on_train_start)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}


@pytest.mark.slow
def test_maps_from_a_trained_run_are_its_models_maps_and_training_starts_from_fresh_weights(make_cfg, tmp_path: Path) -> None:
    data = [
        "data=shortcut",
        f"data.data_dir={tmp_path / 'shortcut'}",
        "data.n_train=20",
        "data.n_val=10",
        "data.n_test=10",
        "data.cue=gradient",
        "data.cue_guard=3",
    ]
    baseline = run_cli(
        "src.train", *data, "reduction=none", "trainer.max_epochs=2", "debug=fast", f"hydra.run.dir={tmp_path / 'baseline'}", project_root=tmp_path
    )
    assert baseline.returncode == 0, baseline.stderr
    cfg = make_cfg(
        "train", *data, "reduction.method=prediction", "reduction.rounds=1", "reduction.percentile=40", f"reduction.maps_from={tmp_path / 'baseline'}",
        "trainer.max_epochs=1", "test=false", *FAST,
    )  # fmt: skip
    datamodule = build_datamodule(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, datamodule)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    first = FirstEpochWeights()
    build_trainer(cfg, [*build_callbacks(cfg), first], []).fit(model, datamodule=datamodule)
    # the round's masks are what the baseline's best model keeps of the original training images
    trained = load_module(json.loads((tmp_path / "baseline" / "run.json").read_text())["best_checkpoint"])
    original = SegmentationTensors(*load_split(tmp_path / "shortcut" / "train", 20)).images
    expected = shard_masks(trained, original, torch.ones(20, 32, 32, dtype=torch.bool), 40, RelevanceConfig(method="prediction"), 64).masks
    assert torch.equal(torch.from_numpy(read_masks(Path(cfg.paths.output_dir) / "reduction" / "round_01" / "masks.npz")), expected)
    # and the run trained from its own initial weights, not the baseline's
    assert all(torch.equal(first.weights[k], initial[k]) for k in initial)
    assert not all(torch.equal(trained.state_dict()[k], initial[k]) for k in initial)
    # a baseline of another network is refused before any training
    other = make_cfg(
        "train", *data, "model=fcn", "reduction.rounds=1", f"reduction.maps_from={tmp_path / 'baseline'}", "trainer.max_epochs=1", "test=false", *FAST
    )
    datamodule = build_datamodule(other)
    with pytest.raises(UserInputError, match="holds another network than this run's"):
        build_trainer(other, build_callbacks(other), []).fit(build_model(other, datamodule), datamodule=datamodule)


def test_maps_from_a_run_that_did_not_finish_or_a_missing_file_is_refused_before_training(make_cfg, tmp_path: Path) -> None:
    (tmp_path / "unfinished").mkdir()
    result = run_cli("src.train", f"reduction.maps_from={tmp_path / 'unfinished'}", "debug=fast", project_root=tmp_path)
    assert result.returncode != 0 and "is not a finished training run" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))
    with pytest.raises(InstantiationException, match="missing.ckpt not found; pass a run dir"):
        build_callbacks(make_cfg("train", f"reduction.maps_from={tmp_path / 'missing.ckpt'}"))


class ThresholdNet(torch.nn.Module):
    """A one-channel 'segmenter' whose prediction is the input itself: foreground where it is
    bright, so the predicted foreground is known by construction."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            self.scale.weight.fill_(10.0)
            self.scale.bias.fill_(-5.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scale(images)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)


def test_the_object_prior_ranks_the_predicted_foreground_first_then_by_distance() -> None:
    images = torch.zeros(1, 1, 9, 9)
    images[0, 0, 3:5, 3:5] = 1.0  # predicted foreground: a 2x2 block; no ground truth is read
    config = RelevanceConfig(method="object_prior", seed=1)
    relevance = relevance_maps(ThresholdNet().eval(), images, config, torch.tensor([0]), round_=2)[0].flatten()
    predicted = (images[0, 0] > 0.5).long()[None]
    # the oracle's ranking of the prediction, without a margin: the same values, tie draws included
    assert torch.equal(relevance, oracle_relevance(predicted, torch.tensor([0]), seed=1, round_=2, margin=0)[0].flatten())
    foreground = predicted.flatten().bool()
    assert relevance[foreground].min() > relevance[~foreground].max()
    kept = keep_mask(relevance.view(1, 9, 9), torch.ones(1, 9, 9, dtype=torch.bool), 20)[0].flatten()
    distance = torch.from_numpy(distance_transform_edt(~foreground.view(9, 9).numpy())).flatten()
    assert distance[kept].max() <= distance[~kept].min()  # the kept ring is the nearest background


def test_a_randomised_model_redraws_every_layer_and_gives_back_the_trained_weights(make_cfg) -> None:
    from src.reduction.relevance import randomised_weights

    cfg = make_cfg("train", "reduction=none")
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    with torch.no_grad():  # "trained": every weight moved off its initial value
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    trained = {name: value.clone() for name, value in model.state_dict().items()}
    weights = [name for name, _ in model.named_parameters()]
    with randomised_weights(model, (3, 1)):
        drawn = {name: value.clone() for name, value in model.state_dict().items()}
        assert all(not torch.equal(drawn[name], trained[name]) for name in weights if name.endswith("weight")), "a layer kept its weights"
    assert all(torch.equal(model.state_dict()[name], trained[name]) for name in trained)  # put back exactly
    with randomised_weights(model, (3, 1)):  # the same seed: the same draw
        assert all(torch.equal(model.state_dict()[name], drawn[name]) for name in weights)
    # the maps differ from the trained model's; the random controls and the oracle ignore the setting
    images = torch.rand(2, 1, 32, 32)
    plain = relevance_maps(model.eval(), images, RelevanceConfig(method="prediction"), torch.arange(2), 0)
    control = relevance_maps(model, images, RelevanceConfig(method="prediction", randomised_model=True), torch.arange(2), 0)
    assert not torch.allclose(plain, control)
    assert torch.equal(
        relevance_maps(model, images, RelevanceConfig(method="random", randomised_model=True), torch.arange(2), 0),
        relevance_maps(model, images, RelevanceConfig(method="random"), torch.arange(2), 0),
    )


def test_the_cue_oracle_removes_every_cue_pixel_before_any_other() -> None:
    targets = torch.zeros(2, 9, 9, dtype=torch.long)
    targets[:, 4, 4] = 1
    cue = torch.zeros(2, 9, 9, dtype=torch.bool)
    cue[0, 3:6, 5] = True  # a cue next to the object, inside any ring an oracle would keep
    cue[1, 0, :] = True  # and one far from it
    config = RelevanceConfig(method="cue_oracle", seed=4, oracle_margin=0)
    relevance = relevance_maps(torch.nn.Identity(), torch.rand(2, 1, 9, 9), config, torch.arange(2), 1, targets, cue)
    plain = oracle_relevance(targets, torch.arange(2), seed=4, round_=1, margin=0)
    for image in range(2):
        flat, marked = relevance[image].flatten(), cue[image].flatten()
        assert flat[marked].max() < flat[~marked].min()  # every cue pixel below every other
        # elsewhere the oracle's own order
        assert torch.equal(flat[~marked].argsort(), plain[image].flatten()[~marked].argsort())
    # a round keeping all but the cue's pixels keeps none of them, and the object first
    everything = torch.ones(2, 9, 9, dtype=torch.bool)
    kept = keep_mask(relevance, everything, 88)  # ceil(0.88 x 81) = 72: every pixel but image 1's 9 cue pixels
    assert not (kept & cue).any() and kept[:, 4, 4].all()
    with pytest.raises(ValueError, match="cue_oracle needs"):
        relevance_maps(torch.nn.Identity(), torch.rand(2, 1, 9, 9), config, torch.arange(2), 1, targets)
