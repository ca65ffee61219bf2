"""Configs composed as the entry points compose them, writing into a test's own directory."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, open_dict

from src.config.compose import compose_config as compose_run


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    cfg = compose_run(config_name, overrides, output_dir)
    with open_dict(cfg):
        cfg.paths.log_dir = str(output_dir)
    return cfg
