"""Decoded arrays cached on disk between starts (a set's images and masks as one ``.npz``): read
when present, else built, written atomically, and returned; a cache that cannot be written leaves
the arrays in memory only."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def cached_arrays(cache: Path, build: Callable[[], dict[str, np.ndarray]], what: str) -> dict[str, np.ndarray]:
    """The arrays stored at ``cache``, or ``build()``'s, stored there first (a temporary file
    renamed into place, so a killed start leaves no half-written cache). ``what`` names them in
    the warning when the cache cannot be written."""
    if cache.exists():
        with np.load(cache) as stored:
            return {name: stored[name] for name in stored.files}
    arrays = build()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **kwds as its allow_pickle flag
        os.replace(tmp, cache)
    except OSError as err:
        log.warning("could not cache %s in %s (%s); keeping them in memory only", what, cache.parent, err)
    return arrays
