"""Images to predict on, from a file, a folder or a glob; read defensively (untrusted input)."""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from src.config.errors import UserInputError
from src.data.mask_decoding import MaskDecoding
from src.storage.image_files import opened, read_raw_mask
from src.storage.image_files import read_label as read_label_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# label files found beside an image: <stem>_label / <stem>_mask, or eliret's NNNx -> NNNy
LABEL_SUFFIXES = ("_label", "_mask")


class RefusedImage(ValueError):
    """An input that is skipped, with the reason (unreadable, too large, wrong channels)."""


@dataclass
class InputImage:
    path: Path
    pixels: torch.Tensor  # (C, H, W) float in [0, 1], as the checkpoint expects
    note: str  # how it was converted, if it was


def image_paths(pattern: str) -> list[Path]:
    """A file, every image in a folder (sorted), or the files a glob matches."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_label(p))
    elif path.is_file():
        paths = [path]
    else:
        paths = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not paths:
        raise UserInputError(f"input={pattern!r} matches no image; pass a file, a folder of images or a glob like 'dir/*.png'.")
    return paths


def is_label(path: Path) -> bool:
    return path.stem.endswith(LABEL_SUFFIXES) or (path.stem[-1:] == "y" and path.with_name(path.stem[:-1] + "x" + path.suffix).exists())


def label_path(image: Path, labels_dir: Path | None = None) -> Path | None:
    """The label file of ``image``, by one rule wherever it is looked for (``labels_dir``, else the
    image's own folder): ``<stem>_label``, ``<stem>_mask``, eliret's ``NNNx`` -> ``NNNy``, and in a
    ``labels_dir`` also the file with the image's stem (a folder data set's masks/). A label that
    is the image itself is refused: it would score the image against itself."""
    folder = image.parent if labels_dir is None else labels_dir
    candidates = [folder / (image.stem + suffix + image.suffix) for suffix in LABEL_SUFFIXES]
    candidates += [folder / (image.stem + suffix + ".png") for suffix in LABEL_SUFFIXES]
    if image.stem.endswith("x"):
        candidates.append(folder / (image.stem[:-1] + "y" + image.suffix))
    if labels_dir is not None:
        candidates += [p for p in sorted(labels_dir.glob(f"{glob.escape(image.stem)}.*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    found = next((c for c in candidates if c.is_file()), None)
    if found is not None and found.resolve() == image.resolve():
        raise UserInputError(
            f"labels={labels_dir} pairs {image} with itself: that folder holds the input images, not their labels; "
            "point labels= at the folder of label files (e.g. <data>/masks), or leave it out to use the labels beside the images."
        )
    return found


def read_image(path: Path, channels: int, max_pixels: int) -> InputImage:
    """The image as (C, H, W) in [0, 1] with the checkpoint's channel count: RGB(A) -> gray by
    luminance, gray -> RGB by repetition, 16-bit scaled by 65535. Raises RefusedImage."""
    try:
        with opened(path) as image:
            width, height = image.size  # read from the header, before decoding any pixel
            if width * height > max_pixels:
                raise RefusedImage(f"{width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}")
            image.load()
            array, note = _to_array(image, channels)
    except UserInputError as err:  # a prediction run lists an unreadable file and goes on
        raise RefusedImage(f"unreadable ({err.__cause__})") from err
    return InputImage(path, torch.from_numpy(array), note)


def _to_array(image: Image.Image, channels: int) -> tuple[np.ndarray, str]:
    if channels not in (1, 3):
        raise RefusedImage(f"the checkpoint expects {channels} input channels; only 1 (gray) or 3 (RGB) can be made from an image file")
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = np.clip(np.asarray(image, dtype=np.float32) / (65535.0 if mode.startswith("I;16") else max(1.0, float(np.asarray(image).max()))), 0, 1)
        note = f"{mode} scaled to [0, 1]"
        return (gray[None], note) if channels == 1 else (np.repeat(gray[None], 3, 0), f"{note}, gray -> RGB")
    rgb = image.convert("RGB") if mode not in ("L", "RGB") else image
    if channels == 1:
        note = "" if rgb.mode == "L" else f"{mode} -> gray"
        return np.clip(np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0, 0, 1)[None], note
    return np.asarray(rgb.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0, "gray -> RGB" if rgb.mode == "L" else ""


def read_folder_label(path: Path, data: Mapping[str, Any]) -> torch.Tensor:
    """(H, W) long class map of a label decoded as the checkpoint's folder data set decoded its
    masks (``data``: its data module's hyperparameters)."""
    decoding = MaskDecoding(data["classes"], data["foreground"], data["mask_values"], data["ignore_index"])
    raw = read_raw_mask(path)
    foreground = None
    if decoding.classes == 2 and decoding.mask_values is None:
        foreground = decoding.binary_foreground({path: set(np.unique(raw).tolist()) - {decoding.ignore_index}})
    return torch.from_numpy(decoding.decode(raw, path, foreground).astype(np.int64))


def read_label(path: Path, task: str, foreground: str) -> torch.Tensor:
    """(H, W) long: for one-channel tasks 1 where the label is bright (``foreground=bright``) or
    dark (``dark``: membrane labels mark membranes black); class indices for multi-class."""
    array = read_label_file(path)
    if task == "multiclass":
        return torch.from_numpy(array.astype(np.int64))
    bright = array > 127
    return torch.from_numpy((bright if foreground == "bright" else ~bright).astype(np.int64))
