"""The saliency reduction through the public entry points (composed config, CLI for DDP)."""

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from src.config.errors import UserInputError
from src.config.schemas import net_config, with_defaults
from src.config.schemas.reduction import METHODS
from src.data.eliret import EliretDataModule
from src.jobs.builders import build_callbacks, build_datamodule, build_model, build_trainer
from src.models.segmentation import SegmentationModule
from src.reduction.callback import SaliencyReduction
from src.reduction.masking import fill_stored
from src.reduction.packed import unpack
from src.reduction.relevance import RelevanceConfig, relevance_maps
from src.reduction.round import shard_masks
from src.reduction.round_outputs import read_masks
from src.storage.checkpoints import load_module
from src.train import train
from tests.helpers.fast import FAST
from tests.helpers.runs import ddp_reduction_round
from tests.helpers.wandb_records import written_bytes


def rounds_csv(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "reduction" / "rounds.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_three_rounds_keep_0_9_0_81_0_729(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("train", "reduction.rounds=3", "reduction.epochs_per_round=1", *FAST))
    rows = rounds_csv(tmp_path)
    assert [int(r["round"]) for r in rows] == [1, 2, 3]
    assert [float(r["kept_fraction"]) for r in rows] == pytest.approx([0.9, 0.81, 0.729], abs=0.01)
    for column in (
        "val/loss",
        "val/miou",
        "val/mdice",
        "val/mse",
        "mean_spatial_entropy",
        "mean_moment_of_inertia",
        "fit_seconds",
        "relevance_seconds",
        "fill_seconds",
        "swap_seconds",
    ):
        assert all(np.isfinite(float(r[column])) for r in rows), column
    previous = None
    for r in (1, 2, 3):
        path = tmp_path / "reduction" / f"round_{r:02d}" / "masks.npz"
        masks = read_masks(path)
        assert masks.dtype == bool and masks.shape == (100, 32, 32)
        assert np.load(path)["ids"].tolist() == list(range(100))
        assert path.stat().st_size < 100 * 32 * 32 / 8 + 2000  # one bit per pixel
        if previous is not None:
            assert not (masks & ~previous).any()  # cumulative: monotone
        previous = masks
        assert (tmp_path / "reduction" / f"round_{r:02d}" / "examples.png").stat().st_size > 1000
    assert "test/mse" in metrics


@pytest.mark.slow
def test_only_the_training_set_is_reduced(make_cfg, data_root: Path) -> None:
    cfg = make_cfg("train", "reduction.rounds=2", "reduction.epochs_per_round=1", *FAST)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    callbacks = build_callbacks(cfg)
    trainer = build_trainer(cfg, callbacks, [])
    trainer.fit(model, datamodule=datamodule)
    fresh = with_defaults(EliretDataModule, str(data_root / "eliret"))
    fresh.setup()
    reduction = next(c for c in callbacks if isinstance(c, SaliencyReduction))
    for split in ("val", "test"):
        assert torch.equal(datamodule.splits[split].images, fresh.splits[split].images)
    reduced, original = datamodule.train_set.images, fresh.train_set.images
    keep = reduction.masks.unsqueeze(1)
    assert torch.equal(reduced[keep], original[keep]) and (reduced[~keep] == 0).all()
    assert reduction.masks.float().mean().item() == pytest.approx(0.81, abs=0.01)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("out_channels", [1, 3])
def test_every_relevance_method_gives_one_map_per_image(method: str, out_channels: int) -> None:
    module = with_defaults(
        SegmentationModule,
        net=net_config("unet", depth=2, base_width=4),
        task="multiclass" if out_channels > 1 else "regression",
        in_channels=1,
        out_channels=out_channels,
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
    ).eval()
    images = torch.rand(5, 1, 16, 16)
    targets = (images > 0.5).float() if out_channels == 1 else torch.randint(0, out_channels, (5, 16, 16))  # what the oracle reads
    cue = torch.rand(5, 16, 16) > 0.8  # what the cue oracle reads too (the others ignore it)
    maps = relevance_maps(module, images, RelevanceConfig(method=method, ig_steps=4, smoothgrad_samples=2), targets=targets, cue=cue)
    assert maps.shape == (5, 16, 16) and torch.isfinite(maps).all()
    assert not any(p.grad is not None for p in module.parameters())


def test_prediction_relevance_is_the_non_background_probability() -> None:
    module = with_defaults(
        SegmentationModule,
        net=net_config("unet", depth=1, base_width=2),
        task="multiclass",
        in_channels=1,
        out_channels=3,
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
    ).eval()
    images = torch.rand(2, 1, 8, 8)
    probs = module(images).softmax(1)
    maps = relevance_maps(module, images, RelevanceConfig(background_class=0))
    assert torch.allclose(maps, probs[:, 1] + probs[:, 2], atol=1e-6)


@pytest.mark.parametrize(
    "override, message",
    [
        ("reduction.percentile=0", r"percentile=0 must be in \(0, 100\]"),
        ("reduction.percentile=100.5", "must be in"),
        ("reduction.rounds=-1", "rounds=-1 must be >= 0"),
        ("reduction.method=lime", "unknown reduction.method='lime'"),
        ("reduction.fill=noise", "unknown reduction.fill='noise'"),
        ("reduction.epochs_per_round=0", "epochs_per_round=0 must be >= 1"),
    ],
)
@pytest.mark.slow
def test_bad_reduction_settings_stop_before_training(make_cfg, tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(Exception) as info:
        train(make_cfg("train", override))
    from src.config.user_errors import user_error_in

    error = user_error_in(info.value)
    assert error is not None and __import__("re").search(message, str(error))
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_rounds_split_the_epoch_budget(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train", "trainer.max_epochs=7", "reduction.rounds=3", *FAST)
    assert cfg.reduction.epochs_per_round == 2
    train(cfg)
    assert [r["round"] for r in rounds_csv(tmp_path)] == ["1", "2", "3"]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 5  # 3 x 2 epochs


@pytest.mark.slow
def test_zero_rounds_train_once_without_reduction(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train", "trainer.max_epochs=2", "reduction.rounds=0", *FAST)
    assert not any(isinstance(c, SaliencyReduction) for c in build_callbacks(cfg))
    train(cfg)
    assert not (tmp_path / "reduction").exists()
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1  # max_epochs


@pytest.mark.slow
def test_background_class_outside_the_model_is_refused(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train", "reduction.rounds=1", "reduction.epochs_per_round=1", "reduction.background_class=5")
    # one-channel output: background_class is irrelevant; multi-class outputs check it
    cfg.reduction.background_class = 5
    datamodule = build_datamodule(cfg)
    model = with_defaults(
        SegmentationModule,
        net=net_config("unet", depth=2, base_width=4),
        task="multiclass",
        in_channels=1,
        out_channels=2,
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True},
    )
    trainer = build_trainer(cfg, build_callbacks(cfg), [])
    with pytest.raises(UserInputError, match="background_class=5 is not a class of this model"):
        trainer.fit(model, datamodule=datamodule)


@pytest.mark.slow
def test_resume_redoes_a_reduction_the_checkpoint_predates(make_cfg, tmp_path: Path) -> None:
    # checkpoints saved at validation end (not train-epoch end) are written before the reduction
    common = (
        "reduction.rounds=2",
        "reduction.epochs_per_round=2",
        "callbacks.model_checkpoint.save_top_k=-1",
        "callbacks.model_checkpoint.save_weights_only=false",
        "+callbacks.model_checkpoint.save_on_train_epoch_end=false",
        *FAST,
    )
    train(make_cfg("train", *common, "test=false"))
    uninterrupted = rounds_csv(tmp_path)
    # epoch_001.ckpt: written at round 1's last epoch, before round 1's reduction ran
    state = torch.load(tmp_path / "checkpoints" / "epoch_001.ckpt", weights_only=True)
    assert state["callbacks"]["SaliencyReduction"]["rounds_done"] == 0
    resumed_dir = tmp_path / "resumed"
    cfg = make_cfg("train", *common, "test=false", f"ckpt_path={tmp_path / 'checkpoints' / 'epoch_001.ckpt'}")
    cfg.paths.output_dir = str(resumed_dir)
    train(cfg)
    resumed = rounds_csv(resumed_dir)
    assert [r["round"] for r in resumed] == ["1", "2"]
    assert resumed[0]["masks_sha256"] == uninterrupted[0]["masks_sha256"]
    assert float(resumed[1]["kept_fraction"]) == pytest.approx(0.81, abs=0.01)


@pytest.mark.slow
def test_resume_mid_round_trains_on_the_reduced_set(make_cfg, tmp_path: Path) -> None:
    common = (
        "reduction.rounds=2",
        "reduction.epochs_per_round=2",
        "callbacks.model_checkpoint.save_top_k=-1",
        "callbacks.model_checkpoint.save_weights_only=false",
        *FAST,
    )
    train(make_cfg("train", *common, "test=false"))
    state = torch.load(tmp_path / "checkpoints" / "epoch_002.ckpt", weights_only=True)["callbacks"]["SaliencyReduction"]
    assert state["rounds_done"] == 1 and unpack(state["masks"]).float().mean().item() == pytest.approx(0.9, abs=0.01)
    cfg = make_cfg("train", *common, "test=false", f"ckpt_path={tmp_path / 'checkpoints' / 'epoch_002.ckpt'}")
    datamodule = build_datamodule(cfg)
    callbacks = build_callbacks(cfg)
    trainer = build_trainer(cfg, callbacks, [])
    trainer.fit(build_model(cfg, datamodule), datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    reduction = next(c for c in callbacks if isinstance(c, SaliencyReduction))
    assert reduction.rounds_done == 2 and len(reduction.history) == 2
    assert reduction.history[0]["masks_sha256"] == rounds_csv(tmp_path)[0]["masks_sha256"]


@pytest.fixture(scope="module")
def ddp_round(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, str, str]:
    """One reduction round with the impute fill, trained by two gloo ranks (the two tests below
    read it: the masks and the fill are exchanged in the same round)."""
    root = tmp_path_factory.mktemp("ddp_round")
    return (root, *ddp_reduction_round(root, "reduction.fill=impute"))


@pytest.mark.slow
def test_ddp_ranks_hold_identical_masks_equal_to_one_process(ddp_round: tuple[Path, np.ndarray, str, str]) -> None:
    """Two gloo processes: each computes relevance for its shard, they exchange masks; both end
    with the same masks, and those equal a one-process computation from the same weights."""
    tmp_path, saved, digest, output = ddp_round
    assert f"masks sha256 {digest} (rank 0 of 2)" in output
    assert f"masks sha256 {digest} (rank 1 of 2)" in output

    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    module = load_module(run / "checkpoints" / "last.ckpt")
    datamodule = with_defaults(EliretDataModule, str(tmp_path / "data" / "eliret"))
    datamodule.setup()
    images = datamodule.train_set.images
    shard = shard_masks(module, images, torch.ones(len(images), 32, 32, dtype=torch.bool), 90, RelevanceConfig(), 16)
    assert hashlib.sha256(shard.masks.numpy().tobytes()).hexdigest() == digest


@pytest.mark.slow
def test_two_ddp_ranks_each_fill_half_and_hold_the_one_process_fill(ddp_round: tuple[Path, np.ndarray, str, str]) -> None:
    """The impute fill split across two gloo ranks: each fills its half of the training set and
    says so in its progress lines (the run's output is redirected), the halves are exchanged,
    and both ranks hold the images a one-process fill of the saved masks gives."""
    tmp_path, saved, _, output = ddp_round
    digests = re.findall(r"reduction round 1: images sha256 ([0-9a-f]{64}) \(rank (\d) of 2\)", output)
    assert sorted(rank for _, rank in digests) == ["0", "1"] and digests[0][0] == digests[1][0]
    assert "reduction round 1: impute fill of 50 of 100 images on each rank: 100% (50 of 50 images" in output
    assert re.search(r"reduction round 1: relevance \(prediction\): 100% \(\d+ of \d+ images", output)
    assert re.search(r"reduction round 1: relevance [0-9.]+ s, fill \(impute\) [0-9.]+ s, swap [0-9.]+ s", output)

    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    seed = OmegaConf.load(run / ".hydra" / "config.yaml").reduction.seed
    datamodule = with_defaults(EliretDataModule, str(tmp_path / "data" / "eliret"))
    datamodule.setup()
    one_process = fill_stored(datamodule.train_set.images, torch.from_numpy(saved), "impute", noise_seed=(seed, 1))
    assert hashlib.sha256(one_process.numpy().tobytes()).hexdigest() == digests[0][0]


@pytest.mark.slow
@pytest.mark.parametrize("logger", ["wandb", "tensorboard"])
def test_rounds_reach_the_logger_with_images(make_cfg, tmp_path: Path, logger: str) -> None:
    train(make_cfg("train", f"logger={logger}", "reduction.rounds=2", "reduction.epochs_per_round=1", *FAST))
    if logger == "wandb":
        (run,) = (tmp_path / "wandb").glob("offline-run-*")
        images = list((run / "files" / "media" / "images").rglob("*.png"))
        tables = list((run / "files" / "media" / "table").rglob("*.json"))
        assert len(images) == 2 and len(tables) == 1
        assert b"reduction/kept_fraction" in written_bytes(run / f"run-{run.name.split('-')[-1]}.wandb", b"reduction/kept_fraction")
    else:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
        accumulator.Reload()
        assert len(accumulator.Images("reduction/examples")) == 2
        assert [e.value for e in accumulator.Scalars("reduction/round")] == [1.0, 2.0]


def test_every_fill_the_schema_names_has_its_function() -> None:
    from src.config.schemas.reduction import FILLS
    from src.reduction.masking import BACKGROUNDS

    assert {*BACKGROUNDS, "impute"} == set(FILLS)
