"""salseg: a Lightning + Hydra framework for segmentation and saliency research."""

import os
from pathlib import Path

# Configs resolve paths against ${oc.env:PROJECT_ROOT}; default it to this checkout so
# `python -m src.train` works from any working directory.
os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parents[1]))

from omegaconf import OmegaConf  # noqa: E402

# `${floordiv:a,b}`: the reduction config splits trainer.max_epochs into rounds.
OmegaConf.register_new_resolver("floordiv", lambda a, b: int(a) // int(b), replace=True)
