"""``--help`` for the entry points: the config groups a user can pick and the composed config.

Hydra's own ``--help`` lists the typed schemas registered beside the YAML options
(``data: ..., eliret_schema, ...``), and lists each group by deep-copying its whole config
repository, seconds per call. This lists the YAML options under ``conf/`` (the schemas live only
in the ConfigStore) and composes the config once, without importing torch.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, HydraException
from omegaconf import DictConfig, OmegaConf

from src.config.compose import CONF
from src.config.registration import register

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
    register()
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


def _composed(config_name: str, overrides: list[str]) -> DictConfig:
    return _composed_once(config_name, tuple(overrides))


# the checks before a run compose the same overrides twice (misspelt keys, missing values)
@functools.lru_cache(maxsize=4)
def _composed_once(config_name: str, overrides: tuple[str, ...]) -> DictConfig:
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose(config_name, overrides=overrides)


def misspelt_key(config_name: str, args: list[str]) -> str | None:
    """One line for an override whose key the config does not have, naming the closest keys it
    does have (``reduction.percentil=90``: did you mean reduction.percentile?), or None. Hydra's
    own answer suggests ``+key`` (append a key), which a typed group then refuses after the heavy
    imports. Sweeps (``a,b``, ``range(...)``) and Hydra's own keys are left to Hydra."""
    overrides = _plain_overrides(args)
    try:
        _composed(config_name, overrides)
        return None
    except ConfigCompositionException as error:
        found = re.search(r"Could not override '([^']+)'", str(error))
        if found is None:
            return None
        key = found.group(1)
    rest = [o for o in overrides if o.split("=", 1)[0].lstrip("~") != key]
    try:
        cfg = _composed(config_name, rest)
    except HydraException:
        return None
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    names = [str(k) for k in node.keys()] if OmegaConf.is_dict(node) else []
    close = difflib.get_close_matches(leaf, names, n=3, cutoff=0.6)
    where = f"`{parent}`" if parent else "the config"
    if close:
        return f"unknown key {key}: did you mean {' or '.join(f'{parent}.{c}' if parent else c for c in close)}? ({where} has no '{leaf}')"
    return f"unknown key {key}: {where} has no '{leaf}'; its keys: {', '.join(names)}."


def _plain_overrides(args: list[str]) -> list[str]:
    return [a for a in args if "=" in a and not a.startswith(("-", "hydra.")) and not re.search(r",|\(", a.split("=", 1)[1])]


def missing_values(config_name: str, args: list[str]) -> str | None:
    """The usage line when a mandatory value (``???``: ``ckpt_path`` of eval and predict) is not
    given, or None."""
    try:
        cfg = _composed(config_name, _plain_overrides(args))
    except HydraException:
        return None
    # the entry points' own mandatory values are top-level keys; is_missing resolves nothing
    missing = [str(k) for k in cfg.keys() if OmegaConf.is_missing(cfg, k)]
    if not missing:
        return None
    example = " ".join(f"{k}=..." for k in missing)
    return f"missing {', '.join(missing)}. Usage: python -m src.{config_name} {example} [key=value ...] (--help lists every key)"


def refuse_misspelt_keys(config_name: str, argv: list[str] | None = None) -> None:
    """Exit with one line (status 2) when an override names a key the config does not have, or
    a mandatory value is missing."""
    args = (sys.argv if argv is None else argv)[1:]
    problem = misspelt_key(config_name, args) or missing_values(config_name, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
