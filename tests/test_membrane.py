"""ISBI 2012 membrane: both on-disk layouts, bad input, border weights, challenge metrics, and a
short training run on the real data in ../shared (skipped where it is absent)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import adapted_rand_error, variation_of_information

from src.config.errors import UserInputError
from src.config.schemas import with_defaults
from src.data.border_weights import border_weight_map
from src.data.membrane import MembraneDataModule, read_membrane, resize_stack
from src.models.challenge_metrics import InstanceScores, cell_instances
from src.reduction.round_outputs import read_masks
from src.storage.checkpoints import load_module
from src.train import train
from tests.helpers.shared_data import SHARED, needs_shared

# the real data with a narrow net, for short end-to-end runs
REAL_DATA = ("data=membrane", f"data.data_dir={SHARED}", "model.net.base_width=8")


def cells_image(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic EM-like pair: a grid of bright cells split by dark membranes (label 0)."""
    rng = np.random.default_rng(seed)
    label = np.full((size, size), 255, np.uint8)
    for k in range(0, size, 16):
        offset = int(rng.integers(0, 4))
        label[:, (k + offset) % size] = 0
        label[(k + offset) % size, :] = 0
    image = np.where(label > 0, 200, 40).astype(np.uint8)
    return image, label


def write_png_layout(root: Path, n: int = 6, n_labels: int | None = None) -> Path:
    for sub in ("train/image", "train/label", "test/image"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, label = cells_image(i)
        Image.fromarray(image).save(root / "train" / "image" / f"{i}.png")
        if n_labels is None or i < n_labels:
            Image.fromarray(label).save(root / "train" / "label" / f"{i}.png")
        Image.fromarray(image).save(root / "test" / "image" / f"{i}.png")
    return root


def write_tiff_layout(root: Path, n_images: int = 6, n_labels: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pairs = [cells_image(i) for i in range(max(n_images, n_labels))]
    images = [Image.fromarray(p[0]) for p in pairs[:n_images]]
    labels = [Image.fromarray(p[1]) for p in pairs[:n_labels]]
    images[0].save(root / "train-volume.tif", save_all=True, append_images=images[1:])
    labels[0].save(root / "train-labels.tif", save_all=True, append_images=labels[1:])
    return root


def test_png_and_tiff_layouts_read_the_same(tmp_path: Path) -> None:
    png_images, png_labels, png_test = read_membrane(write_png_layout(tmp_path / "png"))
    tif_images, tif_labels, tif_test = read_membrane(write_tiff_layout(tmp_path / "tif"))
    assert np.array_equal(png_images, tif_images) and np.array_equal(png_labels, tif_labels)
    assert png_test.shape == (6, 64, 64) and tif_test is None


def test_membrane_is_the_foreground_and_splits_are_seeded(tmp_path: Path) -> None:
    root = write_png_layout(tmp_path)
    dm = with_defaults(MembraneDataModule, str(root), image_size=64, val_count=2, augment=None)
    dm.setup()
    assert len(dm.splits["train"]) == 4 and len(dm.splits["val"]) == 2
    _, labels, _ = read_membrane(root)
    assert dm.splits["train"].masks.mean().item() == pytest.approx((labels == 0).mean(), abs=0.05)
    other = with_defaults(MembraneDataModule, str(root), image_size=64, val_count=2, augment=None)
    other.setup()
    assert torch.equal(dm.splits["val"].images, other.splits["val"].images)
    assert len(dm.predict_dataloader().dataset) == 6


def test_labels_are_resized_at_pixel_centres_like_pil(tmp_path: Path) -> None:
    # torch's "nearest" would take each 2x2 block's top-left pixel; the label must come from the
    # block's centre, where the antialiased image is, exactly as PIL's NEAREST (the original study's loader)
    rng = np.random.default_rng(0)
    labels = np.where(rng.random((3, 64, 64)) < 0.3, 0, 255).astype(np.uint8)
    resized = resize_stack(labels, 32, labels="centre")
    pil = np.stack([np.asarray(Image.fromarray(label).resize((32, 32), Image.NEAREST)) for label in labels])
    assert torch.equal(resized[:, 0], torch.from_numpy(pil).float() / 255)


def test_majority_labels_keep_half_membrane_blocks(tmp_path: Path) -> None:
    # 2x2 blocks at 32 -> 16: 4, 2 (a tie: membrane, so thin membranes stay closed), 1, 0 membrane pixels
    label = np.full((32, 32), 255, np.uint8)
    label[0:2, 0:2] = 0
    label[0:2, 2] = 0
    label[2, 4] = 0
    for sub in ("train/image", "train/label"):
        (tmp_path / sub).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((32, 32), 128, np.uint8)).save(tmp_path / "train" / "image" / f"{i}.png")
        Image.fromarray(label).save(tmp_path / "train" / "label" / f"{i}.png")
    dm = with_defaults(MembraneDataModule, str(tmp_path), image_size=16, label_resize="majority", val_count=1, augment=None)
    dm.setup()
    assert dm.splits["val"].masks[0, 0, :2, :3].tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert dm.splits["val"].masks.sum().item() == 2
    with pytest.raises(UserInputError, match="label_resize='bicubic'"):
        with_defaults(MembraneDataModule, str(tmp_path), label_resize="bicubic")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: write_png_layout(root, n=5, n_labels=4), "unpaired: 4.png"),
        (lambda root: write_tiff_layout(root, n_images=6, n_labels=5), "6 pages but train-labels.tif has 5"),
        (lambda root: root, "ISBI 2012 membrane data not found"),
    ],
)
def test_bad_layouts_name_the_file(tmp_path: Path, make, message: str) -> None:
    root = make(tmp_path / "data")
    with pytest.raises(UserInputError, match=message):
        read_membrane(root)


def test_corrupt_png_is_named(tmp_path: Path) -> None:
    root = write_png_layout(tmp_path)
    (root / "train" / "label" / "3.png").write_bytes(b"garbage")
    with pytest.raises(UserInputError, match=r"3\.png"):
        read_membrane(root)


def test_border_weights_peak_between_touching_cells() -> None:
    membrane = np.zeros((20, 20), bool)
    membrane[:, 10] = True  # one membrane line between two cells
    membrane[:, 0] = True  # and one at the image edge, next to one cell only
    weights = border_weight_map(membrane, w0=10, sigma=2)
    assert weights[5, 10] > weights[5, 0] + 5  # between two cells: d1 + d2 small
    assert weights[5, 5] == pytest.approx(0.5 / (1 - membrane.mean()))  # cell pixel: class weight only


def test_instance_scores_are_zero_for_a_perfect_prediction_and_high_for_all_membrane() -> None:
    _, label = cells_image(0)
    truth = torch.from_numpy(label == 0).long()[None]
    metric = InstanceScores(prefix="val/")
    metric.update(truth, truth)
    assert {k: v.item() for k, v in metric.compute().items()} == pytest.approx({"val/rand_error": 0.0, "val/vi": 0.0}, abs=1e-6)
    metric = InstanceScores()
    metric.update(torch.ones_like(truth), truth)
    assert metric.compute()["rand_error"].item() > 0.9


def test_instance_scores_from_one_table_equal_scikit_images_scores_computed_apart() -> None:
    truths, preds = [], []
    for seed in (0, 1):
        _, label = cells_image(seed)
        truth = label == 0
        noise = np.random.default_rng(seed).random(truth.shape) < 0.05
        truths.append(truth)
        preds.append(truth ^ noise)
    metric = InstanceScores()
    metric.update(torch.from_numpy(np.stack(preds)).long(), torch.from_numpy(np.stack(truths)).long())
    rand, vi = [], []
    for truth, pred in zip(truths, preds, strict=True):
        cells_true, cells_pred = cell_instances(truth), cell_instances(pred)
        rand.append(adapted_rand_error(cells_true, cells_pred, ignore_labels=(0,))[0])
        vi.append(sum(variation_of_information(cells_true, cells_pred, ignore_labels=(0,))))
    values = metric.compute()
    assert values["rand_error"].item() == pytest.approx(float(np.mean(rand)), rel=1e-6) and 0 < values["rand_error"].item() < 1
    assert values["vi"].item() == pytest.approx(float(np.mean(vi)), rel=1e-6) and values["vi"].item() > 0


@pytest.mark.slow
def test_weighted_loss_without_weights_is_refused(make_cfg, tmp_path: Path) -> None:
    root = write_png_layout(tmp_path / "data")
    cfg = make_cfg("train", "data=membrane", f"data.data_dir={root}", "model.loss=weighted_ce", "reduction=none", "trainer.max_epochs=1")
    with pytest.raises(UserInputError, match="data.border_weights=true"):
        train(cfg)


@pytest.mark.slow
def test_membrane_trains_with_every_augmentation_and_the_weighted_loss(make_cfg, tmp_path: Path) -> None:
    root = write_png_layout(tmp_path / "data")
    for augment in ("membrane", "elastic", "shift", "none"):
        cfg = make_cfg(
            "train",
            "data=membrane",
            f"data.data_dir={root}",
            "data.image_size=32",
            f"augment={augment}",
            "model.loss=weighted_ce",
            "data.border_weights=true",
            "model.net.depth=2",
            "model.net.base_width=4",
            "reduction=none",
            "trainer.max_epochs=1",
        )
        metrics = train(cfg)
        assert {"val/rand_error", "val/vi", "test/acc"} <= set(metrics)


@pytest.mark.slow
@needs_shared
def test_real_membrane_data_trains_with_reduction(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train", *REAL_DATA, "data.image_size=64", "trainer.max_epochs=2", "reduction.rounds=2", "trainer.limit_train_batches=2")
    metrics = train(cfg)
    assert all(np.isfinite(metrics[k]) for k in ("val/acc", "val/rand_error", "val/vi", "test/miou"))
    kept = read_masks(tmp_path / "reduction" / "round_02" / "masks.npz")
    assert kept.shape == (20, 64, 64) and kept.mean() == pytest.approx(0.81, abs=0.01)


@pytest.mark.slow
@needs_shared
def test_membrane_trains_on_256_px_crops_and_scores_the_whole_512_px_images(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train", *REAL_DATA, "data.crop_size=256", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "reduction.rounds=0")
    metrics = train(cfg)
    assert all(np.isfinite(metrics[k]) for k in ("val/acc", "val/rand_error", "test/miou"))
    datamodule = with_defaults(MembraneDataModule, str(SHARED), crop_size=256)
    datamodule.setup()
    assert datamodule.train_set[0]["image"].shape == (1, 256, 256)
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["image"].shape[-2:] == (512, 512)
    module = load_module(next((tmp_path / "checkpoints").glob("epoch_*.ckpt")))
    assert module.hparams.eval_window == 256
    tiles: list[tuple[int, ...]] = []
    module.net.register_forward_hook(lambda _net, inputs, _out: tiles.append(tuple(inputs[0].shape[-2:])))
    with torch.no_grad():
        logits = module.evaluation_logits(batch["image"])
    # the whole image is scored, in 256 px tiles
    assert logits.shape[-2:] == (512, 512) and set(tiles) == {(256, 256)}
