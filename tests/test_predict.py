"""Prediction on new images of any size (``src.predict``), through the composed config."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from src.config.errors import UserInputError
from src.config.schemas import with_defaults
from src.data.eliret_generator import SPLIT_FILES
from src.data.png_pairs import read_split_csv
from src.jobs.prediction import predict
from src.prediction.inputs import RefusedImage, read_image
from src.prediction.tiling import allow_any_size, predict_probabilities
from src.storage.checkpoints import load_module
from src.storage.image_files import read_gray
from src.train import train

# one worker runs the module under pytest-xdist, so its module-scoped fixture is built once
pytestmark = pytest.mark.xdist_group("predict")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A briefly trained eliret U-Net (depth 3): enough for shapes to come out."""
    from tests.helpers.compose import compose_config

    out = tmp_path_factory.mktemp("trained")
    cfg = compose_config(
        "train",
        [f"paths.data_dir={data_root}", "trainer=cpu", "logger=none", "callbacks.progress_bar=null", "reduction=none", "trainer.max_epochs=3"],
        out,
    )
    train(cfg)
    return next(p for p in (out / "checkpoints").iterdir() if p.name != "last.ckpt")


def predict_cfg(tmp_path: Path, *overrides: str):
    from tests.helpers.compose import compose_config

    return compose_config("predict", list(overrides), tmp_path)


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path / "predictions.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_predicts_a_folder_of_larger_images_scored_against_their_labels(checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred"
    rows = predict(predict_cfg(tmp_path, f"ckpt_path={checkpoint}", f"input={data_root}/eliret/maior*x.png", f"output_dir={out}", "overlay=true"))
    assert len(rows) == 6 and rows_of(out)[0]["label"].endswith("maior1y.png")
    for row in rows:
        probability = np.asarray(Image.open(out / f"{row['output']}_prob.png"))
        mask = np.asarray(Image.open(out / f"{row['output']}_mask.png"))
        assert probability.dtype == np.uint16 and probability.shape == (row["height"], row["width"]) == mask.shape
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask == 255, probability >= round(0.5 * 65535))  # mask = thresholded probability
        assert 0.0 <= row["iou"] <= 1.0 and (out / f"{row['output']}_overlay.png").exists()
    assert {(r["height"], r["width"]) for r in rows} == {(72, 88), (80, 88)}


@pytest.mark.slow
def test_tiled_prediction_equals_untiled_within_the_stated_tolerance(checkpoint: Path, data_root: Path) -> None:
    """Our U-Net pads its convolutions, so a tile's edge pixels see zeros where the whole image
    has context; tiles large against the receptive field (128 px, 50% overlap, Gaussian weights
    that favour tile centres) keep that small: the stated tolerance of docs/prediction.md."""
    module = load_module(checkpoint).eval()
    allow_any_size(module)
    tiles = [torch.from_numpy(read_gray(path)).float() / 255 for path in sorted((data_root / "eliret").glob("0[0-9][0-9]x.png"))[:36]]
    mosaic = torch.cat([torch.cat(tiles[row * 6 : row * 6 + 6], 1) for row in range(6)], 0)[None]  # 192 x 192
    whole = predict_probabilities(module, mosaic, border=16)
    tiled = predict_probabilities(module, mosaic, roi_size=128, overlap=0.5, border=16)
    assert whole.shape == tiled.shape == (1, 192, 192)
    assert (whole - tiled).abs().mean() < 0.01
    assert ((whole >= 0.5) == (tiled >= 0.5)).float().mean() > 0.99


@pytest.mark.slow
def test_prediction_by_default_scores_the_test_images_as_the_runs_own_test(checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    """A net trained on whole 32 px images never saw a mirrored edge: by default it predicts
    as its own test scored it, so the test images come out as the run's test/acc says."""
    images = tmp_path / "test_images"
    images.mkdir()
    for x, y in read_split_csv(data_root / "eliret" / SPLIT_FILES["test"]):
        shutil.copy(x, images / x.name)
        shutil.copy(y, images / y.name)
    rows = predict(predict_cfg(tmp_path, f"ckpt_path={checkpoint}", f"input={images}", f"output_dir={tmp_path / 'pred'}"))
    tested = json.loads((checkpoint.parents[1] / "metrics.json").read_text())
    assert len(rows) == 50 and sum(float(r["acc"]) for r in rows) / len(rows) == pytest.approx(tested["test/acc"], abs=1e-5)
    # the per-pixel probabilities are the evaluation path's, up to the one-window blend's rounding
    # (a mirrored border changes them)
    module = load_module(checkpoint).eval()
    image = torch.from_numpy(read_gray(next(images.glob("*x.png")))).float()[None] / 255
    with torch.no_grad():
        evaluated = module.probabilities(module.evaluation_logits(image[None]))[0]
    assert torch.allclose(predict_probabilities(module, image), evaluated, atol=1e-6)
    assert (predict_probabilities(module, image, border=16) - evaluated).abs().max() > 0.01


@pytest.mark.slow
def test_sides_not_divisible_by_the_depth_are_padded_and_cropped_back(checkpoint: Path) -> None:
    module = load_module(checkpoint).eval()
    allow_any_size(module)
    assert predict_probabilities(module, torch.rand(1, 37, 53)).shape == (1, 37, 53)


@pytest.mark.slow
def test_untrusted_inputs_are_skipped_with_the_reason(checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in dir ü"  # spaces and non-ASCII in the path
    inputs.mkdir()
    Image.open(data_root / "eliret" / "000x.png").save(inputs / "good.png")
    (inputs / "truncated.png").write_bytes((data_root / "eliret" / "001x.png").read_bytes()[:60])
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(inputs / "rgb.png")
    Image.fromarray((np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16)).save(inputs / "deep.png")
    Image.fromarray(np.zeros((200, 200), np.uint8)).save(inputs / "huge.png")
    out = tmp_path / "pred"
    rows = predict(predict_cfg(tmp_path, f"ckpt_path={checkpoint}", f"input='{inputs}'", f"output_dir='{out}'", "max_pixels=10000"))
    by_name = {Path(str(r["image"])).name: r for r in rows}
    assert set(by_name) == {"good.png", "rgb.png", "deep.png"}
    assert by_name["rgb.png"]["converted"] == "RGB -> gray" and "I;16" in str(by_name["deep.png"]["converted"])
    with pytest.raises(RefusedImage, match="exceeds max_pixels"):
        read_image(inputs / "huge.png", 1, 10000)
    with pytest.raises(RefusedImage, match="unreadable"):
        read_image(inputs / "truncated.png", 1, 10000)


@pytest.mark.slow
def test_bad_prediction_settings_name_the_fix(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="matches no image"):
        predict(predict_cfg(tmp_path, f"ckpt_path={checkpoint}", f"input={tmp_path}/nothing*.png"))
    with pytest.raises(UserInputError, match="threshold"):
        predict(predict_cfg(tmp_path, f"ckpt_path={checkpoint}", f"input={tmp_path}", "threshold=2"))


@pytest.mark.slow
def test_trainer_predict_gives_probabilities(checkpoint: Path, data_root: Path) -> None:
    from src.data.eliret import EliretDataModule

    module = load_module(checkpoint)
    datamodule = with_defaults(EliretDataModule, str(data_root / "eliret"), augment="none")
    datamodule.setup()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    batches = trainer.predict(module, dataloaders=datamodule.test_dataloader())
    probabilities = torch.cat(batches)
    assert probabilities.shape == (50, 1, 32, 32) and 0 <= probabilities.min() and probabilities.max() <= 1


def test_a_label_folder_pairs_by_the_default_rule_and_refuses_the_image_itself(tmp_path: Path) -> None:
    from src.prediction.inputs import label_path

    images = tmp_path / "eliret"
    images.mkdir()
    for name in ("010x.png", "010y.png", "020x.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(images / name)
    # the issue's case: labels=<the images' own folder> paired 010x.png with itself
    assert label_path(images / "010x.png", images) == images / "010y.png"
    assert label_path(images / "010x.png") == images / "010y.png"  # the default pairing agrees
    with pytest.raises(UserInputError, match="pairs .*020x.png with itself"):
        label_path(images / "020x.png", images)
    masks = tmp_path / "masks"  # a folder data set's masks/, named by the image's stem
    masks.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(masks / "020x.png")
    assert label_path(images / "020x.png", masks) == masks / "020x.png"


def test_empty_label_and_prediction_score_one_and_keep_the_mean_finite() -> None:
    from src.prediction.outputs import label_metrics

    empty = torch.zeros(6, 6, dtype=torch.long)
    one = empty.clone()
    one[2:4, 2:4] = 1
    assert label_metrics(empty, empty, 2) == {"acc": 1.0, "iou": 1.0, "dice": 1.0}
    missed = label_metrics(empty, one, 2)  # an object predicted empty, and the reverse, score 0
    assert missed["iou"] == missed["dice"] == 0.0 and label_metrics(one, empty, 2)["iou"] == 0.0
    half = one.clone()
    half[2:4, 3] = 0  # 2 of the 4 object pixels: IoU 1/2, Dice 2/3
    assert label_metrics(half, one, 2)["iou"] == pytest.approx(0.5) and label_metrics(half, one, 2)["dice"] == pytest.approx(2 / 3)
    three = one * 2  # multi-class: classes absent from both are left out of the average
    assert label_metrics(three, three, 3)["iou"] == 1.0 and not np.isnan(label_metrics(empty, empty, 3)["dice"])


def test_a_label_with_every_pixel_ignored_is_an_error_for_its_row_not_a_nan() -> None:
    from src.prediction.outputs import label_metrics

    prediction, ignored = torch.zeros(4, 4, dtype=torch.long), torch.full((4, 4), 255)
    with pytest.raises(ValueError, match="every pixel of the label is the ignore index 255: nothing to score"):
        label_metrics(prediction, ignored, 3, ignore_index=255)
    partly = ignored.clone()
    partly[0, 0] = 0
    assert label_metrics(prediction, partly, 3, ignore_index=255)["acc"] == 1.0
