"""A folder data set on disk: ``images/`` and ``masks/`` paired by file stem, optional split lists,
and the decoding of one image file, each problem refused with the file named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from src.config.errors import UserInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclass(frozen=True)
class Pair:
    stem: str
    image: Path
    mask: Path


def _by_stem(folder: Path, suffixes: tuple[str, ...], what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserInputError(f"{folder} is not a folder; data=folder reads {what} from data.data_dir/{folder.name}/ (see docs/own_data.md).")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes:
            continue
        if path.stem in found:
            raise UserInputError(f"{found[path.stem]} and {path} share the stem {path.stem!r}; keep one {what[:-1]} per name.")
        found[path.stem] = path
    if not found:
        raise UserInputError(f"no {what} in {folder} (looked for {', '.join(suffixes)}).")
    return found


def find_pairs(data_dir: Path) -> dict[str, Pair]:
    """Every image with its mask, by stem; an image without a mask or a mask without an image is
    refused, naming the files."""
    images = _by_stem(data_dir / "images", IMAGE_SUFFIXES, "images")
    masks = _by_stem(data_dir / "masks", MASK_SUFFIXES, "masks")
    for stems, have, lack in ((images.keys() - masks.keys(), images, "mask"), (masks.keys() - images.keys(), masks, "image")):
        if stems:
            named = ", ".join(str(have[s]) for s in sorted(stems)[:5]) + (f" and {len(stems) - 5} more" if len(stems) > 5 else "")
            raise UserInputError(f"{named}: no {lack} with the same stem in {data_dir / (lack + 's')}. Add it, or move the file out of the folder.")
    return {stem: Pair(stem, images[stem], masks[stem]) for stem in sorted(images)}


def read_split_lists(data_dir: Path, stems: set[str]) -> dict[str, list[str]] | None:
    """The stems named by ``train.txt``, ``val.txt`` and ``test.txt`` (one stem or file name per
    line, ``#`` comments), or None when there are none. Without ``test.txt`` the test split is the
    validation split."""
    paths = {split: data_dir / f"{split}.txt" for split in SPLITS}
    if not any(p.exists() for p in paths.values()):
        return None
    for split in ("train", "val"):
        if not paths[split].exists():
            raise UserInputError(f"{paths[split]} is missing: with split lists in {data_dir}, train.txt and val.txt are both needed (test.txt is optional).")
    lists: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for split, path in paths.items():
        if not path.exists():
            continue
        names = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            stem = Path(entry).stem if Path(entry).suffix.lower() in IMAGE_SUFFIXES else entry
            if stem not in stems:
                raise UserInputError(f"{path}:{number} names {entry!r}, which has no image and mask pair in {data_dir}. Fix or remove that line.")
            if stem in owner:
                raise UserInputError(f"{path}:{number}: {stem!r} is already in {owner[stem]}.txt; an image belongs to one split.")
            owner[stem] = split
            names.append(stem)
        if not names:
            raise UserInputError(f"{path} names no image: the {split} split would be empty. List at least one image, or delete the file.")
        lists[split] = names
    lists.setdefault("test", lists["val"])
    return lists
