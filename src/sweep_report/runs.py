"""Reading what runs already wrote (no re-training): config, overrides, final metrics, per-round
reduction history and per-epoch logged metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from src.config.errors import UserInputError
from src.config.registration import register


@dataclass
class Run:
    path: Path
    config: DictConfig  # as saved, unresolved (values that need Hydra's runtime cannot resolve here)
    overrides: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    rounds: pd.DataFrame | None = None  # reduction/rounds.csv
    epochs: pd.DataFrame | None = None  # csv/metrics.csv, one row per epoch

    def value(self, key: str, default: Any = None) -> Any:
        try:
            return OmegaConf.select(self.config, key, default=default)
        except Exception:  # an interpolation into Hydra's runtime (paths.output_dir): not a setting
            return default

    @property
    def seed(self) -> int:
        return int(self.value("seed", 0))

    @property
    def reduced(self) -> bool:
        """Whether the saliency reduction ran (rounds >= 1), i.e. not a no-reduction baseline; a
        classification run has a reduction config but never reduces (no rounds.csv)."""
        configured = self.value("reduction._target_") is not None and int(self.value("reduction.rounds", 0)) > 0
        return configured and _kind(self.value("model._target_")) != "classification"

    @property
    def epochs_per_round(self) -> int | None:
        return int(self.value("reduction.epochs_per_round")) if self.reduced else None

    def setting(self, key: str) -> str:
        """The value of ``key`` in this run: its override, else its config value; "—" for a
        reduction parameter of a run without reduction (it does not apply)."""
        if key.startswith("reduction.") and key != "reduction.rounds" and not self.reduced:
            return "—"
        if key in self.overrides:
            return self.overrides[key]
        return str(self.value(key, "—"))


def load_run(path: Path) -> Run:
    path = Path(path)
    config_path = path / ".hydra" / "config.yaml"
    if not config_path.exists():
        raise UserInputError(f"{path} is not a run dir (no .hydra/config.yaml); pass a run or sweep dir under outputs/.")
    config = OmegaConf.load(config_path)
    overrides_path = path / ".hydra" / "overrides.yaml"
    overrides = _parse_overrides(OmegaConf.to_container(OmegaConf.load(overrides_path)) if overrides_path.exists() else [])
    run = Run(path=path, config=config, overrides=overrides)
    if (path / "metrics.json").exists():
        run.metrics = json.loads((path / "metrics.json").read_text())
    if (path / "run.json").exists():
        run.best_epoch = json.loads((path / "run.json").read_text()).get("best_epoch")
    if (path / "reduction" / "rounds.csv").exists():
        run.rounds = pd.read_csv(path / "reduction" / "rounds.csv")
    if (path / "csv" / "metrics.csv").exists():
        run.epochs = per_epoch(pd.read_csv(path / "csv" / "metrics.csv"))
    return run


def per_epoch(logged: pd.DataFrame) -> pd.DataFrame:
    """Lightning's CSV rows (train, val and timing logged on separate rows) merged to one row per
    epoch of the fit; what validate()/test() logged after the fit is dropped."""
    register()  # the resolvers the run's config was saved with
    fit = logged.drop(columns=[c for c in logged.columns if c.startswith(("test/", "test_shift/", "final_round/"))])
    fit = fit.dropna(subset=[c for c in fit.columns if c not in ("epoch", "step")], how="all")
    per = fit.groupby("epoch").last().reset_index().drop(columns="step", errors="ignore")
    trained = per.filter(like="train/").notna().any(axis=1)
    return per[per.epoch <= per.epoch[trained].max()] if trained.any() else per


def _parse_overrides(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, _, value = item.partition("=")
        pairs[key.lstrip("+~")] = value
    return pairs


def load_sweep(path: Path) -> list[Run]:
    """Every job of a multirun (sub-dirs with a .hydra config), in job order."""
    path = Path(path)
    jobs = sorted((p.parent.parent for p in path.glob("*/.hydra/config.yaml")), key=lambda p: (len(p.name), p.name))
    if not jobs:
        raise UserInputError(f"{path} holds no runs (no */.hydra/config.yaml); pass a sweep dir (outputs/<task>/multiruns/<time>).")
    return [load_run(job) for job in jobs]


def load_summary(path: Path) -> list[Run]:
    """The jobs of a ``sweep_summary.csv`` alone (its run dirs need not exist): each job's config
    is composed again from its overrides (with the presets as they are now), its metrics and best
    epoch are the CSV's; per-epoch curves and reduction rounds are not in the CSV."""
    register()  # the schemas its configs are composed from
    from src.config.compose import compose_config  # Hydra's compose API: only for CSV sources

    path = Path(path)
    rows = pd.read_csv(path, dtype={"overrides": str, "run_dir": str}, keep_default_na=False)
    missing = {"job", "overrides", "status"} - set(rows.columns)
    if missing:
        raise UserInputError(f"{path} is not a sweep summary (no {', '.join(sorted(missing))} column); pass the sweep_summary.csv a multirun wrote.")
    runs = []
    for row in rows.to_dict("records"):
        items = str(row["overrides"]).split()
        config = compose_config("train", items, Path("outputs"))
        run = Run(path=Path(str(row.get("run_dir") or row["job"])), config=config, overrides=_parse_overrides(items))
        if row["status"] == "ok":
            run.metrics = {k: float(v) for k, v in row.items() if "/" in k and v != ""}
            run.best_epoch = int(row["best_epoch"]) if str(row.get("best_epoch", "")) != "" else None
        runs.append(run)
    return runs


def load_sources(paths: list[Path]) -> list[Run]:
    """The runs of every source, in order: sweep dirs (their run dirs) and sweep_summary CSVs."""
    runs: list[Run] = []
    for path in paths:
        path = Path(path)
        if path.is_file() and path.suffix == ".csv":
            runs += load_summary(path)
        elif path.is_dir() and is_sweep(path):
            runs += load_sweep(path)
        else:
            raise UserInputError(f"{path} is neither a sweep dir nor a sweep_summary.csv; pass several of those to report them together.")
    return runs


def is_sweep(path: Path) -> bool:
    return (Path(path) / "multirun.yaml").exists() or any(Path(path).glob("*/.hydra/config.yaml"))


def _kind(target: str | None) -> str | None:
    """The ``kind`` of a saved run's model class (None: no class, or one this checkout lacks)."""
    try:
        return None if target is None else getattr(get_class(target), "kind", None)
    except ImportError:
        return None
