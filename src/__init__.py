"""salseg: a Lightning + Hydra framework for segmentation and saliency research."""

import os
from pathlib import Path

# Configs resolve paths against ${oc.env:PROJECT_ROOT}; default it to this checkout so
# `python -m src.train` works from any working directory.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))
