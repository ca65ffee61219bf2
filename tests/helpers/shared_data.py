"""The real ISBI 2012 membrane data in ../shared, where the machine has it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "isbi2012_membrane"
needs_shared = pytest.mark.skipif(not (SHARED / "train" / "image").is_dir(), reason=f"ISBI data not at {SHARED}")
