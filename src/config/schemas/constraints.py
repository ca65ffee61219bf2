"""What a schema field may hold, written on the field itself: a closed choice is its type,
``Annotated[str, Literal[...]]``; a range is ``Annotated[float, Range(check, meaning)]``.
:func:`~src.config.schemas.check_ranges` reads both from the schema a config node is built by."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class Range:
    """A numeric field's valid values: ``check(value)`` holds, and ``meaning`` says what that is
    (the error's words: "must be <meaning>")."""

    check: Callable[[Any], bool]
    meaning: str


# ranges shared by fields of several schemas (one place each)
BatchSize = Annotated[int, Range(lambda v: v >= 1, ">= 1")]
Workers = Annotated[int, Range(lambda v: v >= 0, ">= 0")]
ImageSide = Annotated[int, Range(lambda v: v >= 8, ">= 8 pixels")]
OptionalImageSide = Annotated[int | None, Range(lambda v: v >= 8, ">= 8 pixels")]
LearningRate = Annotated[float, Range(lambda v: 0 < v < 10, "in (0, 10), e.g. 1e-3")]
WeightDecay = Annotated[float, Range(lambda v: v >= 0, ">= 0")]


def field_choices(schema: Any) -> dict[str, tuple[str, ...]]:
    """Field -> the values of its ``Literal`` (the one place each closed choice is written)."""
    return {name: get_args(extra) for name, extra in _annotations(schema) if get_origin(extra) is Literal}


def field_ranges(schema: Any) -> dict[str, Range]:
    """Field -> its :class:`Range`."""
    return {name: extra for name, extra in _annotations(schema) if isinstance(extra, Range)}


def _annotations(schema: Any) -> list[tuple[str, Any]]:
    hints = get_type_hints(schema, include_extras=True) if isinstance(schema, type) else {}
    return [(name, extra) for name, hint in hints.items() if get_origin(hint) is Annotated for extra in hint.__metadata__]
