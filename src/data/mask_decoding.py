"""Mask files' values to class indices: binary with a foreground value, 0..N-1 (or a palette's
indices), or any encoding through ``mask_values``; unlabelled pixels keep ``ignore_index``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.config.errors import UserInputError


def _shown(values: Iterable[int]) -> str:
    values = sorted(values)
    return ", ".join(map(str, values[:10])) + (", ..." if len(values) > 10 else "")


@dataclass(frozen=True)
class MaskDecoding:
    """classes: 2 is binary (one output channel), N > 2 multi-class.
    foreground: binary only, the stored value of the foreground (None: 1 for 0/1 masks, 255 for
        0/255 masks); every other value is background.
    mask_values: the stored value of each class, in class order (e.g. [0, 128, 255]).
    ignore_index: the stored value of unlabelled pixels, kept as is in the class maps (so it must
        lie outside 0..classes-1 and fit uint8).
    """

    classes: int = 2
    foreground: int | None = None
    mask_values: Sequence[int] | None = None
    ignore_index: int | None = None

    def __post_init__(self) -> None:
        if self.classes < 2 or self.classes > 255:
            raise UserInputError(f"data.classes={self.classes} must be 2 (binary) to 255.")
        if self.mask_values is not None:
            if len(self.mask_values) != self.classes:
                raise UserInputError(
                    f"data.mask_values lists {len(self.mask_values)} values for data.classes={self.classes}; give one stored value per class, in class order."
                )
            if len(set(self.mask_values)) != len(self.mask_values):
                raise UserInputError(f"data.mask_values={list(self.mask_values)} repeats a value; each class needs its own.")
        if self.foreground is not None and self.classes != 2:
            raise UserInputError(f"data.foreground is for binary masks (data.classes=2), not data.classes={self.classes}; use data.mask_values.")
        if self.ignore_index is not None and not self.classes <= self.ignore_index <= 255:
            raise UserInputError(
                f"data.ignore_index={self.ignore_index} must lie in {self.classes}..255, outside the class indices 0..{self.classes - 1}; "
                "re-save the unlabelled pixels with such a value (255 is usual)."
            )

    def binary_foreground(self, values_by_file: Mapping[Path, set[int]]) -> int:
        """The foreground value of a binary set, from the values each mask file holds (ignore
        excluded); a set that is neither 0/1 nor 0/255 is refused naming a file behind each stray
        value."""
        if self.foreground is not None:
            return self.foreground
        values = set().union(*values_by_file.values())
        for fg in (1, 255):
            if values <= {0, fg}:
                return fg
        likely = 255 if 255 in values else 1
        stray = sorted(values - {0, likely})
        where = []
        for value in stray[:3]:
            files = [path for path, held in values_by_file.items() if value in held]
            more = f" (and {len(files) - 1} more file{'s' * (len(files) > 2)})" if len(files) > 1 else ""
            where.append(f"{value} is in {files[0]}{more}")
        located = "; ".join(where) + ("; ..." if len(stray) > 3 else "")
        raise UserInputError(
            f"binary masks hold the values {_shown(values)}, not 0/1 or 0/255: {located}. Fix those files, set data.foreground "
            "to the foreground's value (every other value is background), or data.mask_values=[background, foreground]."
        )

    def decode(self, raw: np.ndarray, path: Path, foreground: int | None = None) -> np.ndarray:
        """(H, W) uint8 class indices (``ignore_index`` where unlabelled) of one mask's stored
        values; a value no class claims is refused, naming the file, the values and the fix."""
        unlabelled = raw == self.ignore_index if self.ignore_index is not None else np.zeros(raw.shape, bool)
        if self.mask_values is not None:
            lookup = {int(v): c for c, v in enumerate(self.mask_values)}
            stray = set(np.unique(raw[~unlabelled]).tolist()) - lookup.keys()
            if stray:
                raise UserInputError(
                    f"mask {path} holds {_shown(stray)}, which data.mask_values={list(self.mask_values)} does not list; add them there "
                    "(one value per class), or set data.ignore_index for unlabelled pixels."
                )
            out = np.zeros(raw.shape, np.uint8)
            for value, cls in lookup.items():
                out[raw == value] = cls
        elif self.classes == 2:
            out = (raw == foreground).astype(np.uint8)
            if self.foreground is None:
                stray = set(np.unique(raw[~unlabelled]).tolist()) - {0, foreground}
                if stray:
                    raise UserInputError(
                        f"mask {path} holds {_shown(stray)} beside 0 and {foreground}; binary masks hold two values. "
                        "Set data.foreground (every other value is background) or data.mask_values."
                    )
        else:
            stray = {v for v in np.unique(raw[~unlabelled]).tolist() if not 0 <= v < self.classes}
            if stray:
                raise UserInputError(
                    f"mask {path} holds {_shown(stray)}, outside the classes 0..{self.classes - 1} of data.classes={self.classes}; "
                    "map the stored values with data.mask_values=[value of class 0, value of class 1, ...] or raise data.classes."
                )
            out = raw.astype(np.uint8)
        if self.ignore_index is not None:
            out[unlabelled] = self.ignore_index
        return out
