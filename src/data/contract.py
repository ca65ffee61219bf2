"""What the jobs, the reduction and the robustness suite read from a data module.

:class:`ExperimentData` is the base every data module here derives from (through
:class:`~src.data.segmentation_dataset.SplitDataModule`): it gives the optional members their
defaults, and :func:`experiment_data` checks the required ones once, before any training, naming
what is missing. A data module of your own derives from it too (``docs/datamodule.md``).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import lightning as L
from torch.utils.data import DataLoader, Dataset

from src.config.errors import UserInputError

# stated by every data module, and by segmentation or classification data
REQUIRED = ("task", "in_channels", "mean", "std")
REQUIRED_FOR = {"segmentation": ("out_channels",), "classification": ("num_classes",)}


class ExperimentData(L.LightningDataModule):
    """A data module as the jobs use it.

    Required (a class attribute or a property of the subclass):
        task: ``binary``, ``multiclass``, ``regression`` (segmentation) or ``classification``.
        in_channels, mean, std: the images' channels and the normalisation the model applies.
        out_channels (segmentation): 1 for binary and regression targets, else the classes.
        num_classes (classification): the number of image labels.

    Optional (defaults here):
        ignore_index: the target value of unlabelled pixels, skipped by the losses and metrics.
        challenge_metrics: also report the ISBI challenge's Rand and information scores.
        eval_window: the side of the windows a model evaluates full images in (None: whole).
        provides_weights: its batches carry per-pixel loss weights (the weighted losses need them).
        streamed: its training set is read from disk, not held in memory.
        natural_shifts: robustness shifts of its own (``robustness.shifts`` adds to them).
        test_splits: extra test sets every run is also tested on (``test_<split>/...``), served
            by :meth:`split_dataloader`.
        example_size: (height, width) of a training image, for the model summary's FLOPs (None:
            unknown).
        train_set: the training split, which the saliency reduction replaces in place (None:
            not replaceable).
    """

    if TYPE_CHECKING:  # declared read-only for the type checker: a subclass states each as a class attribute or a property

        @property
        def task(self) -> str: ...
        @property
        def in_channels(self) -> int: ...
        @property
        def mean(self) -> tuple[float, ...]: ...
        @property
        def std(self) -> tuple[float, ...]: ...
        @property
        def out_channels(self) -> int: ...
        @property
        def num_classes(self) -> int: ...

    ignore_index: int | None = None
    challenge_metrics = False
    eval_window: int | None = None
    provides_weights = False
    streamed = False
    natural_shifts: tuple[str, ...] = ()
    test_splits: tuple[str, ...] = ()

    @property
    def example_size(self) -> tuple[int, int] | None:
        return None

    @property
    def train_set(self) -> Dataset | None:
        return None

    def split_dataloader(self, name: str) -> DataLoader:
        """The loader of extra test split ``name`` (one of :attr:`test_splits`)."""
        raise KeyError(f"{type(self).__name__} has no extra test split {name!r} (its test_splits: {self.test_splits})")


def experiment_data(datamodule: object, kind: str | None = None) -> ExperimentData:
    """``datamodule``, checked to be an :class:`ExperimentData` that states the required members
    (for ``kind``, segmentation or classification, too), without computing them: a property may
    need ``setup``. Anything else is refused, naming what is missing, before any training."""
    name = type(datamodule).__name__
    if not isinstance(datamodule, ExperimentData):
        raise UserInputError(f"data module {name} is not a src.data.contract.ExperimentData; derive it from src.data.segmentation_dataset.SplitDataModule.")
    missing = [member for member in (*REQUIRED, *REQUIRED_FOR.get(kind or "", ())) if not _stated(datamodule, member)]
    if missing:
        raise UserInputError(f"data module {name} does not state {', '.join(missing)} (src/data/contract.py says what each means).")
    return datamodule


def _stated(datamodule: object, name: str) -> bool:
    try:
        inspect.getattr_static(datamodule, name)
    except AttributeError:
        return False
    return True
