"""The runs behind the results tables: each is ``python -m src.train`` with these overrides, on
one torch thread (so a run's numbers do not depend on how many run beside it)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEMBRANE_DATA = Path(os.environ.get("ISBI_DATA_DIR", ROOT.parent / "shared" / "data" / "isbi2012_membrane"))


@dataclass(frozen=True)
class Run:
    name: str
    overrides: tuple[str, ...]
    label: str  # how the table names it
    needs_membrane: bool = False
    predict: str | None = None  # after training, src.predict on these images (relative to the checkout)


MEMBRANE = ("data=membrane", "model=unet")
RUNS = [
    Run("eliret_unet", ("reduction=none",), "`python -m src.train reduction=none` (U-Net, depth 3, width 16)"),
    Run("eliret_fcn", ("reduction=none", "experiment=eliret_fcn"), "`python -m src.train reduction=none experiment=eliret_fcn` (FCN)"),
    Run("eliret_reduction", (), "`python -m src.train` (3 rounds x 50 epochs, p = 90, zero fill, prediction relevance)"),
    Run("membrane", MEMBRANE, "`python -m src.train data=membrane model=unet`", needs_membrane=True),
    Run("membrane_noskip", (*MEMBRANE, "model.net.skip=false"), "the same with `model.net.skip=false` (no-skip ablation)", needs_membrane=True),
    Run("membrane_elastic", (*MEMBRANE, "augment=elastic"), "`augment=elastic` (U-Net paper's deformation + flips)", needs_membrane=True),
    Run("membrane_dice", (*MEMBRANE, "model.loss=dice+bce"), "`model.loss=dice+bce`", needs_membrane=True),
    Run(
        "membrane_weighted",
        (*MEMBRANE, "model.loss=weighted_ce", "data.border_weights=true"),
        "`model.loss=weighted_ce data.border_weights=true` (U-Net paper's weights, w0 = 10, sigma = 5 px at 512)",
        needs_membrane=True,
    ),
    Run("membrane_cosine", (*MEMBRANE, "model/scheduler=cosine"), "`model/scheduler=cosine`", needs_membrane=True),
    Run(
        "membrane_centre",
        (*MEMBRANE, "data.label_resize=centre"),
        "`data.label_resize=centre` (the label of one pixel, as the original study's loader)",
        needs_membrane=True,
    ),
    Run("early_exit", ("model=early_exit_cnn", "data=eliret_cls"), "`python -m src.train model=early_exit_cnn data=eliret_cls`"),
    Run("eliret_maior", ("experiment=eliret_maior",), "`python -m src.train experiment=eliret_maior` (shifts +-70%, flips)", predict="data/eliret/maior*x.png"),
    Run(
        "eliret_maior_noshift",
        ("experiment=eliret_maior", "augment=none"),
        "`python -m src.train experiment=eliret_maior augment=none`",
        predict="data/eliret/maior*x.png",
    ),
]
BY_NAME = {run.name: run for run in RUNS}


def command(run: Run, out: Path) -> list[str]:
    data = [f"data.data_dir={MEMBRANE_DATA}"] if run.needs_membrane else []
    return [
        sys.executable,
        "-m",
        "src.train",
        *run.overrides,
        *data,
        "seed=42",
        "torch_threads=1",
        "logger=csv",
        "callbacks.progress_bar.mode=lines",
        f"hydra.run.dir={out / run.name}",
    ]


def execute(run: Run, out: Path) -> dict[str, Any]:
    """Run it (its log in ``out/<name>.log``) and read back what the tables need."""
    started = time.perf_counter()
    with open(out / f"{run.name}.log", "w") as log:
        result = subprocess.run(command(run, out), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "WANDB_MODE": "offline"})
        if result.returncode == 0 and run.predict:
            best = json.loads((out / run.name / "run.json").read_text())["best_checkpoint"]
            predict = [sys.executable, "-m", "src.predict", f"ckpt_path={best}", f"input={ROOT / run.predict}", f"output_dir={out / run.name / 'predicted'}"]
            result = subprocess.run(predict, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "WANDB_MODE": "offline"})
    if result.returncode != 0:
        raise RuntimeError(f"results run {run.name} failed (exit {result.returncode}); see {out / (run.name + '.log')}")
    return read(run, out / run.name, time.perf_counter() - started)


def read(run: Run, run_dir: Path, seconds: float) -> dict[str, Any]:
    record: dict[str, Any] = {"metrics": json.loads((run_dir / "metrics.json").read_text()), "seconds": round(seconds, 1)}
    record["commit"] = (json.loads((run_dir / "run.json").read_text()).get("git") or {}) if (run_dir / "run.json").exists() else {}
    tables = {"rounds": "reduction/rounds.csv", "policies": "early_exit/chosen.csv", "predictions": "predicted/predictions.csv"}
    for name, path in ((name, run_dir / relative) for name, relative in tables.items()):
        if path.exists():
            with open(path) as handle:
                record[name] = list(csv.DictReader(handle))
    return record
