"""Rebuilding a LightningModule from a checkpoint alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.errors import UserInputError

CLASS_KEY = "module_class"


def plain(value: Any) -> Any:
    """OmegaConf containers as plain dicts/lists (other values unchanged), for checkpoints."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def record_module_class(module: L.LightningModule, checkpoint: dict) -> None:
    """Called from ``on_save_checkpoint``: remember which class wrote the checkpoint."""
    checkpoint[CLASS_KEY] = f"{type(module).__module__}.{type(module).__qualname__}"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents, loaded with ``weights_only=True``: tensors and plain values only,
    so a crafted file cannot run code. The framework's checkpoints hold nothing else."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"checkpoint {path} not found; pass ckpt_path=<run dir>/checkpoints/<file>.ckpt.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or unsafe file
        raise UserInputError(
            f"cannot read checkpoint {path}: {str(err).splitlines()[0]}. The file is damaged, not a checkpoint, or holds "
            "objects other than tensors and plain values (refused: loading them could run code)."
        ) from err


def load_module(path: str | Path) -> L.LightningModule:
    header = read_checkpoint(path)
    if CLASS_KEY not in header:
        raise UserInputError(f"checkpoint {path} was not written by this framework (no '{CLASS_KEY}' entry).")
    return get_class(header[CLASS_KEY]).load_from_checkpoint(path, map_location="cpu", weights_only=True)


def trained_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a finished training run's best checkpoint (``best_checkpoint`` in its
    run.json) when ``path`` is a run dir."""
    path = Path(path)
    if path.is_dir():
        record = path / "run.json"
        best = json.loads(record.read_text()).get("best_checkpoint") if record.is_file() else None
        if not best:
            raise UserInputError(
                f"{path} is not a finished training run (no best_checkpoint in {record}); pass a run dir whose training ended, or a .ckpt file."
            )
        path = Path(best)
    if not path.is_file():
        raise UserInputError(f"checkpoint {path} not found; pass a run dir (outputs/<task>/runs/<time>) or a .ckpt file.")
    return path
