"""Your own data (``data=folder``): generated folders in the layout, each file format trained a few
steps with 2 reduction rounds and predicted at native size; bad input refused naming the file."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from src.config.errors import UserInputError
from src.config.schemas import with_defaults
from src.data.folder import FolderDataModule
from src.jobs.prediction import predict
from src.models.losses import build_loss
from src.storage.image_files import read_image
from src.train import train
from tests.helpers.compose import compose_config
from tests.helpers.early import in_own_dir, started
from tests.helpers.folder_sets import write_folder
from tests.helpers.runs import ddp_reduction_round

TWO_ROUNDS = (
    "model=unet",
    "reduction=saliency",
    "reduction.rounds=2",
    "reduction.epochs_per_round=1",
    "reduction.batch_size=4",
    "callbacks.model_summary=null",
)
MIXED_SIZES = [(40 + 6 * i, 66 - 3 * i) for i in range(12)]

# name: (how the folder is written, overrides)
FORMATS = {
    "binary_gray_png": ({}, ()),
    "palette_png_3_classes": ({"classes": 3, "mask_encoding": "palette"}, ("data.classes=3",)),
    "rgb_jpeg_png_masks": ({"rgb": True, "image_format": "jpg"}, ()),
    "tiff_16_bit": ({"bits": 16, "image_format": "tif", "mask_format": "tif", "mask_encoding": "binary1"}, ()),
    "mixed_sizes_crops": ({"size": MIXED_SIZES}, ("data.crop_size=32",)),
    "split_lists": ({}, ()),
    "ignore_index": ({"classes": 3, "mask_encoding": "index", "unlabelled": True}, ("data.classes=3", "data.ignore_index=255")),
}


def train_cfg(tmp_path: Path, folder: Path, *overrides: str):
    base = ["trainer=cpu", "logger=none", "callbacks.progress_bar=null", "data=folder", f"data.data_dir={folder}", "data.batch_size=4"]
    return compose_config("train", base + list(overrides), tmp_path / "run")


def file_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.height, image.width


@pytest.mark.slow
@pytest.mark.parametrize("name", FORMATS)
def test_each_layout_trains_reduces_twice_and_predicts_at_native_size(tmp_path: Path, name: str) -> None:
    writing, overrides = FORMATS[name]
    folder = write_folder(tmp_path / "data", **writing)
    if name == "split_lists":
        stems = sorted(p.stem for p in (folder / "images").iterdir())
        for split, members in (("train", stems[:8]), ("val", stems[8:10]), ("test", stems[10:])):
            (folder / f"{split}.txt").write_text("# one image per line\n" + "\n".join(members) + "\n")
    metrics = train(train_cfg(tmp_path, folder, *TWO_ROUNDS, *overrides))
    assert all(np.isfinite(metrics[k]) for k in ("test/loss", "test/miou", "test/mdice", "val/acc"))
    with open(tmp_path / "run" / "reduction" / "rounds.csv") as handle:
        kept = [float(row["kept_fraction"]) for row in csv.DictReader(handle)]
    assert kept == pytest.approx([0.9, 0.81], abs=0.01)
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    out = tmp_path / "predicted"
    cfg = compose_config("predict", [f"ckpt_path={checkpoint}", f"input={folder / 'images'}", f"labels={folder / 'masks'}", f"output_dir={out}"], tmp_path)
    rows = predict(cfg)
    assert len(rows) == 12
    for row in rows:
        assert (row["height"], row["width"]) == file_size(Path(str(row["image"])))
        assert np.asarray(Image.open(out / f"{row['output']}_mask.png")).shape == (row["height"], row["width"])
        assert 0.0 <= row["iou"] <= 1.0 and "label_error" not in row


def test_split_lists_name_the_splits(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6)
    (folder / "train.txt").write_text("img_000\nimg_001.png\nimg_002\n")
    (folder / "val.txt").write_text("img_003\n")
    datamodule = with_defaults(FolderDataModule, str(folder))
    datamodule.setup()
    assert [len(datamodule.splits[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    assert datamodule.splits["test"] is datamodule.splits["val"]  # no test.txt: tested on val


def test_ratio_split_is_seeded_and_covers_every_pair(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=20)
    stems = [[p.stem for p in with_defaults(FolderDataModule, str(folder), split_seed=seed).scan.splits["val"]] for seed in (0, 0, 1)]
    assert stems[0] == stems[1] != stems[2]
    scan = with_defaults(FolderDataModule, str(folder)).scan
    assert sorted(p.stem for split in scan.splits.values() for p in split) == sorted(p.stem for p in (folder / "images").iterdir())
    assert [len(scan.splits[s]) for s in ("train", "val", "test")] == [16, 2, 2]


def test_decoded_arrays_are_cached_and_a_changed_file_is_decoded_again(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6, size=[(40, 36 + 2 * i) for i in range(6)])
    settings = {"crop_size": 32, "split": [0.5, 0.5, 0.0], "cache_dir": str(tmp_path / "cache")}
    first = with_defaults(FolderDataModule, str(folder), **settings)
    first.setup()
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 2 and all(name.startswith(("folder_train_", "folder_val_")) for name in cached)
    # the user's folder holds only what they put there
    assert sorted(p.name for p in folder.iterdir()) == ["images", "masks"]
    again = with_defaults(FolderDataModule, str(folder), **settings)
    again.setup()
    for split in ("train", "val"):
        assert torch.equal(again.splits[split].images, first.splits[split].images)
        assert torch.equal(again.splits[split].masks, first.splits[split].masks)
        assert torch.equal(again.splits[split].sizes, first.splits[split].sizes)
    Image.new("L", (36, 40), 255).save(first.scan.splits["train"][0].image)
    changed = with_defaults(FolderDataModule, str(folder), **settings)
    changed.setup()
    assert changed.splits["train"].images[0, :, :40, :36].eq(255).all()


def test_mixed_gray_and_rgb_files_are_converted_and_the_summary_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = write_folder(tmp_path / "data", n=6)
    write_folder(tmp_path / "rgb", n=2, rgb=True, seed=1)
    for i in range(2):
        (tmp_path / "rgb" / "images" / f"img_{i:03d}.png").replace(folder / "images" / f"img_{i:03d}.png")
    datamodule = with_defaults(FolderDataModule, str(folder), split=[0.5, 0.5, 0.0])
    with caplog.at_level(logging.INFO, logger="src.data.folder"):
        datamodule.setup()
    assert datamodule.in_channels == 3 and datamodule.scan.converted == 4
    assert "4 files converted to RGB" in caplog.text
    assert datamodule.splits["train"][0]["image"].shape[0] == 3
    assert with_defaults(FolderDataModule, str(folder), channels=1).in_channels == 1


def test_sixteen_bit_images_are_scaled_to_eight_bits(tmp_path: Path) -> None:
    path = tmp_path / "wide.tif"
    Image.fromarray(np.array([[0, 4095, 65535]], np.uint16)).save(path)
    assert read_image(path, 1, None).tolist() == [[[0, 16, 255]]]
    assert read_image(path, 1, 4095).tolist() == [[[0, 255, 255]]]  # 12-bit data in a 16-bit file


def test_masks_decode_to_classes_by_each_encoding(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "spread", n=6, classes=3, mask_encoding="spread")
    datamodule = with_defaults(FolderDataModule, str(folder), classes=3, mask_values=[0, 128, 255], split=[0.5, 0.5, 0.0])
    datamodule.setup()
    stored = np.asarray(Image.open(datamodule.scan.splits["val"][0].mask))
    served = datamodule.splits["val"][0]["mask"].numpy()  # val: not augmented
    assert served.dtype == np.int64 and np.array_equal(served, np.searchsorted([0, 128, 255], stored))
    assert set(np.unique(stored)) == {0, 128, 255}
    palette = write_folder(tmp_path / "palette", n=6, classes=3, mask_encoding="palette")
    module = with_defaults(FolderDataModule, str(palette), classes=3, split=[0.5, 0.5, 0.0])
    module.setup()
    assert set(np.unique(module.splits["train"].masks.numpy())) == {0, 1, 2}
    binary = write_folder(tmp_path / "binary", n=6)
    module = with_defaults(FolderDataModule, str(binary), split=[0.5, 0.5, 0.0])
    module.setup()
    assert module.task == "binary" and set(np.unique(module.splits["train"][0]["mask"].numpy())) <= {0.0, 1.0}


def test_unlabelled_pixels_count_in_no_loss_and_no_metric(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6, classes=3, mask_encoding="index", unlabelled=True)
    datamodule = with_defaults(FolderDataModule, str(folder), classes=3, ignore_index=255, split=[0.5, 0.5, 0.0])
    datamodule.setup()
    target = datamodule.splits["train"][0]["mask"][None]
    assert (target == 255).any()
    _, loss = build_loss("dice+ce", "multiclass", ignore_index=255)
    logits = torch.randn(1, 3, *target.shape[-2:])
    other = logits.clone()
    other[:, :, target[0] == 255] = 10 * torch.randn_like(other[:, :, target[0] == 255])
    assert loss(logits, target) == pytest.approx(loss(other, target).item(), rel=1e-5)
    _, bce = build_loss("bce", "binary", ignore_index=255)
    binary_target = (target > 0).float().where(target != 255, torch.tensor(255.0))[:, None]
    assert bce(logits[:, :1], binary_target) == pytest.approx(bce(other[:, :1], binary_target).item(), rel=1e-5)


def test_crops_train_at_native_resolution_and_whole_images_are_scored(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", size=MIXED_SIZES)
    datamodule = with_defaults(FolderDataModule, str(folder), crop_size=32)
    datamodule.setup()
    train_set = datamodule.splits["train"]
    assert {tuple(train_set[i]["image"].shape) for i in range(len(train_set))} == {(1, 32, 32)}
    sizes = {tuple(batch["image"].shape[-2:]) for batch in datamodule.val_dataloader()}
    assert sizes == {file_size(p.image) for p in datamodule.scan.splits["val"]}
    valid = train_set.valid_pixels()
    assert [int(v.sum()) for v in valid] == [h * w for h, w in train_set.sizes.tolist()]
    assert datamodule.eval_window == 32


@in_own_dir
def folder_ddp_round(path: Path) -> tuple[Path, np.ndarray, str, str]:
    """A folder set of mixed sizes reduced by two gloo ranks (started with the suite, on its lane)."""
    folder = write_folder(path / "folder", size=MIXED_SIZES)
    return (folder, *ddp_reduction_round(path, "data=folder", f"data.data_dir={folder}", "data.crop_size=32", "model=unet", "reduction=saliency"))


@pytest.mark.slow
@pytest.mark.started_early("folder_ddp_round", serial=True)
def test_two_ddp_ranks_reduce_a_folder_set_to_identical_masks(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder, saved, digest, output = started(folder_ddp_round, tmp_path_factory).result()
    assert f"masks sha256 {digest} (rank 0 of 2)" in output
    assert f"masks sha256 {digest} (rank 1 of 2)" in output
    datamodule = with_defaults(FolderDataModule, str(folder), crop_size=32)
    datamodule.setup()
    train_set = datamodule.splits["train"]
    assert saved.shape == (len(train_set), *train_set.images.shape[-2:])
    # each image keeps ceil(90% of its own pixels), none of the canvas beyond it
    assert saved.sum((1, 2)).tolist() == [math.ceil(0.9 * h * w) for h, w in train_set.sizes.tolist()]
    assert not saved[~train_set.valid_pixels().numpy()].any()


# ---- bad input: one error, naming the file and the fix, before training -----------------------
def refused(tmp_path: Path, folder: Path, *overrides: str) -> str:
    with pytest.raises(UserInputError) as error:
        train(train_cfg(tmp_path, folder, "trainer.max_epochs=1", *overrides))
    return str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize(("removed", "left", "missing"), [("masks", "images", "no mask"), ("images", "masks", "no image")])
def test_an_image_without_a_mask_or_a_mask_without_an_image_is_refused_by_name(tmp_path: Path, removed: str, left: str, missing: str) -> None:
    folder = write_folder(tmp_path / "data", n=6)
    (folder / removed / "img_003.png").unlink()
    message = refused(tmp_path, folder)
    assert str(folder / left / "img_003.png") in message and missing in message


@pytest.mark.slow
def test_an_image_and_mask_of_different_sizes_are_refused_by_name(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6)
    Image.new("L", (30, 32)).save(folder / "masks" / "img_002.png")
    message = refused(tmp_path, folder)
    assert str(folder / "masks" / "img_002.png") in message and "32x32" in message and "30x32" in message


@pytest.mark.slow
def test_mask_values_outside_the_classes_name_the_file_values_and_fix(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6, classes=3, mask_encoding="spread")
    message = refused(tmp_path, folder, "data.classes=3")
    assert "masks/img_000.png" in message and "128" in message and "data.mask_values" in message


@pytest.mark.slow
def test_a_stray_value_in_a_binary_set_is_refused_naming_the_file_that_holds_it(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6)
    stray = folder / "masks" / "img_004.png"
    mask = np.asarray(Image.open(stray)).copy()
    mask[0, :3] = 7
    Image.fromarray(mask).save(stray)
    message = refused(tmp_path, folder)
    assert "values 0, 7, 255" in message and f"7 is in {stray}" in message and "data.foreground" in message
    assert "img_000.png" not in message  # only the file that holds the 7


@pytest.mark.slow
def test_an_empty_split_is_refused_naming_the_list(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6)
    (folder / "train.txt").write_text("img_000\nimg_001\n")
    (folder / "val.txt").write_text("# nothing yet\n")
    message = refused(tmp_path, folder)
    assert str(folder / "val.txt") in message and "empty" in message
    (folder / "train.txt").unlink()
    (folder / "val.txt").unlink()
    tiny = write_folder(tmp_path / "tiny", n=2)
    message = refused(tmp_path, tiny)
    assert "split of" in message and "is empty" in message and "data.split" in message


@pytest.mark.slow
def test_an_unreadable_file_is_refused_by_name(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=6)
    (folder / "images" / "img_005.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    message = refused(tmp_path, folder)
    assert str(folder / "images" / "img_005.png") in message and "cannot read" in message


@pytest.mark.slow
def test_mixed_sizes_without_crop_or_resize_are_refused_with_the_fix(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", size=MIXED_SIZES)
    message = refused(tmp_path, folder)
    assert "data.crop_size" in message and "data.image_size" in message


@pytest.mark.slow
def test_a_large_set_streams_from_disk_and_the_reduction_says_why_it_cannot(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", n=8)
    cfg = train_cfg(tmp_path, folder, "data.memory_limit_mb=0.001", "reduction=none", "trainer.max_epochs=1")
    metrics = train(cfg)
    assert np.isfinite(metrics["test/miou"])
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    assert datamodule.streamed
    message = refused(tmp_path / "again", folder, "data.memory_limit_mb=0.001", "reduction=saliency")
    assert "data.memory_limit_mb" in message


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_every_metric_with_ignore_index_equals_the_metric_of_the_labelled_pixels_alone(task: str) -> None:
    from src.models.metrics import SegmentationMetrics

    generator = torch.Generator().manual_seed(0)
    classes = 3 if task == "multiclass" else 1
    probabilities = torch.rand(4, classes, 16, 16, generator=generator)
    if task == "multiclass":
        target = torch.randint(0, 3, (4, 16, 16), generator=generator)
        unlabelled = target.clone()
        unlabelled[:, :, :6] = 255
    else:
        target = (torch.rand(4, 1, 16, 16, generator=generator) > 0.5).float()
        unlabelled = target.clone()
        unlabelled[..., :6] = 255.0
    ignoring = SegmentationMetrics(task, classes, "test/", ignore_index=255)
    ignoring.update(probabilities, unlabelled, torch.tensor(0.0))
    plain = SegmentationMetrics(task, classes, "test/")
    plain.update(probabilities[..., 6:], target[..., 6:], torch.tensor(0.0))
    # the pixels left of column 6 are unlabelled: scored as if they were not there
    values = {k: float(v) for k, v in ignoring.compute().items()}
    assert set(values) >= {"test/acc", "test/miou", "test/miou_image", "test/mdice"}
    assert values == pytest.approx({k: float(v) for k, v in plain.compute().items()})
