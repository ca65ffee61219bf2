"""salseg: a Lightning + Hydra framework for segmentation and saliency research."""

import os
from pathlib import Path

# Configs resolve paths against ${oc.env:PROJECT_ROOT}: default it to this checkout, so
# `python -m src.train` works from any working directory; an installed package (no checkout
# around it) writes outputs/ and data/ under the working directory instead.
_CHECKOUT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(_CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()))

from omegaconf import OmegaConf  # noqa: E402

# `${epochs_per_round:max_epochs,rounds}`: the reduction config splits trainer.max_epochs into
# rounds, at least one epoch each.
OmegaConf.register_new_resolver("epochs_per_round", lambda epochs, rounds: max(1, int(epochs) // max(1, int(rounds))), replace=True)

from src.config.schemas import register  # noqa: E402

register()  # the typed schemas the configs start from
