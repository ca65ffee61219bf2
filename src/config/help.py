"""``--help`` for the entry points: the config groups a user can pick and the composed config.

Hydra's own ``--help`` lists the typed schemas registered beside the YAML options
(``data: ..., eliret_schema, ...``), and lists each group by deep-copying its whole config
repository, seconds per call. This lists the YAML options under ``conf/`` (the schemas live only
in the ConfigStore) and composes the config once, without importing torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import OmegaConf

from src.config.compose import CONF

HELP_FLAGS = ("--help", "-h")


def group_options(conf: Path = CONF) -> dict[str, list[str]]:
    """Each config group (``model/optimizer`` for nested ones) and its YAML options; Hydra's own
    groups (``hydra/...``) are left to ``--hydra-help``."""
    groups: dict[str, list[str]] = {}
    for folder in sorted(p for p in conf.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        group = folder.relative_to(conf).as_posix()
        if group.split("/")[0] == "hydra":
            continue
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        if options:
            groups[group] = options
    return groups


def help_text(config_name: str, overrides: list[str]) -> str:
    """What ``python -m src.<config_name> --help [overrides]`` prints."""
    groups = "\n".join(f"{group}: {', '.join(options)}" for group, options in group_options().items())
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name, overrides=overrides)
    return (
        f"python -m src.{config_name} [group=option ...] [key=value ...]\n\n"
        "== Configuration groups ==\n"
        "Pick an option of a group with group=option (e.g. model=fcn).\n\n"
        f"{groups}\n\n"
        "== Config ==\n"
        "Change any value with key=value (e.g. trainer.max_epochs=10); add a new key with +key=value.\n\n"
        f"{OmegaConf.to_yaml(cfg)}\n"
        "The manual: docs/ (make docs). Hydra's own options: --hydra-help."
    )


def answer_help(config_name: str, argv: list[str] | None = None) -> bool:
    """Print the help and return True when ``argv`` asks for it (a misspelt override in it is
    reported as one line); False otherwise."""
    args = (sys.argv if argv is None else argv)[1:]
    if not any(flag in args for flag in HELP_FLAGS):
        return False
    overrides = [a for a in args if a not in HELP_FLAGS]
    try:
        print(help_text(config_name, overrides), flush=True)
    except HydraException as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        # `--help | head` closed the pipe: end quietly (Python's own exit flush would raise again)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    return True
