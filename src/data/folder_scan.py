"""What a ``data=folder`` set holds, from its file headers alone (no pixel decoded): the pairs,
their splits, each image's size and the channels. A missing partner, a mask of another size than
its image, sizes the settings cannot serve and an empty split are refused here, before a model
is built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.config.errors import UserInputError
from src.data.folder_files import GRAY_MODES, SPLITS, Pair, find_pairs, read_split_lists
from src.storage.image_files import header


@dataclass
class Scan:
    """What the headers say, before any pixel is decoded."""

    splits: dict[str, list[Pair]]
    sizes: dict[str, list[tuple[int, int]]]  # (height, width) of each image, per split
    channels: int
    converted: int  # files whose colour mode differs from ``channels``
    stored_bytes: int  # decoded uint8 images and masks, all splits


def scan_folder(data_dir: Path, channels: int | None, image_size: int | None, crop_size: int | None, split: Sequence[float], split_seed: int) -> Scan:
    """The set at ``data_dir`` as the settings of the same names serve it (``channels`` None:
    RGB if any file is colour)."""
    pairs = find_pairs(data_dir)
    splits = split_pairs(data_dir, pairs, split, split_seed)
    modes: dict[Path, str] = {}
    sizes: dict[str, list[tuple[int, int]]] = {}
    for name, members in splits.items():
        sizes[name] = []
        for pair in members:
            mode, width, height = header(pair.image)
            _, mask_width, mask_height = header(pair.mask, "mask")
            if (mask_width, mask_height) != (width, height):
                raise UserInputError(
                    f"image {pair.image} is {width}x{height} but its mask {pair.mask} is {mask_width}x{mask_height}; "
                    "a mask must have its image's size. Fix or remove the pair."
                )
            modes[pair.image] = mode
            sizes[name].append((height, width))
    gray = sum(mode in GRAY_MODES for mode in modes.values())
    channels = channels or (1 if gray == len(modes) else 3)
    converted = gray if channels == 3 else len(modes) - gray
    if image_size is None:
        check_sizes(splits, sizes, crop_size)
    stored = sum((channels + 1) * (image_size * image_size if image_size else height * width) for sized in sizes.values() for height, width in sized)
    return Scan(splits, sizes, channels, converted, stored)


def split_pairs(data_dir: Path, pairs: dict[str, Pair], split: Sequence[float], split_seed: int) -> dict[str, list[Pair]]:
    """The pairs of each split: as ``train.txt``/``val.txt``/``test.txt`` name them, else the
    (train, val, test) fractions ``split`` of a ``split_seed`` shuffle; without a test split of
    its own the test split is the validation split (the same list, read once)."""
    lists = read_split_lists(data_dir, set(pairs))
    if lists is None:
        order = np.random.default_rng(split_seed).permutation(len(pairs))
        stems = [list(pairs)[i] for i in order]
        n = len(stems)
        n_val = round(split[1] * n)
        n_test = round(split[2] * n)
        lists = {"val": sorted(stems[:n_val]), "test": sorted(stems[n_val : n_val + n_test]), "train": sorted(stems[n_val + n_test :])}
        if split[2] == 0:
            lists["test"] = lists["val"]
        for name in SPLITS:
            if not lists[name]:
                raise UserInputError(
                    f"the {name} split of {data_dir} is empty: data.split={list(split)} of {n} image pairs leaves it none. "
                    "Add images, change data.split, or name the splits in train.txt, val.txt (and test.txt)."
                )
    splits = {name: [pairs[stem] for stem in lists[name]] for name in ("train", "val")}
    splits["test"] = splits["val"] if lists["test"] is lists["val"] else [pairs[stem] for stem in lists["test"]]
    return splits


def check_sizes(splits: dict[str, list[Pair]], sizes: dict[str, list[tuple[int, int]]], crop_size: int | None) -> None:
    """Images used at their own size: all one size, or (``crop_size``) training images at least
    a crop's side."""
    if crop_size is None:
        everything = [(size, pair) for name in SPLITS for size, pair in zip(sizes[name], splits[name])]
        first_size, first = everything[0]
        for size, pair in everything:
            if size != first_size:
                raise UserInputError(
                    f"image {pair.image} is {size[1]}x{size[0]} but {first.image} is {first_size[1]}x{first_size[0]}; images of "
                    "different sizes need data.crop_size (train on crops at native resolution) or data.image_size (resize)."
                )
        return
    for size, pair in zip(sizes["train"], splits["train"]):
        if min(size) < crop_size:
            raise UserInputError(
                f"training image {pair.image} is {size[1]}x{size[0]}, smaller than data.crop_size={crop_size}; lower data.crop_size "
                "or move the image to val.txt/test.txt (evaluation takes images of any size)."
            )
