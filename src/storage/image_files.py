"""Reading image and mask files: the one module that opens them (PIL), so that every file that
cannot be read is refused with its path, whatever data set or tool reads it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from src.config.errors import UserInputError

UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError)
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@contextmanager
def opened(path: Path, what: str = "image") -> Iterator[Image.Image]:
    """The file as a PIL image (header read, pixels not yet decoded); a decompression bomb is
    refused, and a corrupt or foreign file is one error naming it (``what``: image, mask...)."""
    try:
        with warnings.catch_warnings(), Image.open(path) as image:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield image
    except UNREADABLE as err:
        raise UserInputError(f"cannot read {what} {path}: {err}. The file is corrupt or not an image; replace or remove it.") from err


def header(path: Path, what: str = "image") -> tuple[str, int, int]:
    """(mode, width, height) from the file's header, without decoding it."""
    with opened(path, what) as image:
        return image.mode, image.width, image.height


def read_image(path: Path, channels: int, intensity_max: float | None) -> np.ndarray:
    """(channels, H, W) uint8: RGB(A)/palette to gray by luminance or gray to RGB by repetition;
    16-bit and float images scaled by ``intensity_max`` (None: 65535 for 16 bits, 1.0 for float)."""
    with opened(path) as image:
        image.load()
        if image.mode in WIDE_MODES:
            top = intensity_max or (1.0 if image.mode == "F" else 65535.0)
            array = np.clip(np.round(np.asarray(image, dtype=np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)[None]
        elif channels == 1:
            array = np.asarray(image.convert("L"), dtype=np.uint8)[None]
        else:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    if array.shape[0] != channels:
        array = np.repeat(array, channels, axis=0)
    return np.require(array, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])


def read_gray(path: Path) -> np.ndarray:
    """An 8-bit grayscale image as a (H, W) uint8 array: colour is converted to luminance, and a
    16-bit image is scaled to 8 bits (value / 257), not clipped."""
    with opened(path) as image:
        if image.mode.startswith(("I;16", "I")):
            wide = np.asarray(image).astype(np.float64)
            return np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8)
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8."""
    with opened(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def read_raw_mask(path: Path) -> np.ndarray:
    """(H, W) int64 mask values as stored: palette indices for a palette PNG, gray values
    otherwise; a colour mask whose channels differ is refused."""
    with opened(path, "mask") as image:
        image.load()
        if image.mode in ("RGB", "RGBA"):
            rgb = np.asarray(image.convert("RGB"))
            if not ((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])).all():
                raise UserInputError(f"mask {path} is a colour image; save masks as one channel of class values or as a palette PNG (mode P).")
            return rgb[..., 0].astype(np.int64)
        if image.mode == "LA":
            image = image.convert("L")
        return np.asarray(image).astype(np.int64)


def read_label(path: Path) -> np.ndarray:
    """(H, W) uint8 of a label file: gray values, or a palette PNG's indices."""
    with opened(path, "label") as image:
        return np.asarray(image.convert("L") if image.mode not in ("L", "P") else image).copy()


def read_stack(path: Path) -> np.ndarray:
    """(N, H, W) uint8 pages of a multi-page TIFF, each converted to gray."""
    with opened(path, "TIFF stack") as stack:
        return np.stack([np.asarray(page.convert("L"), dtype=np.uint8) for page in ImageSequence.Iterator(stack)])
