"""Check a benchmark's set before any training: ``python -m src.pilot data=shortcut
data.cue=gradient data.cue_guard=4 reduction.percentile=30 [reduction.fill=impute ...]``.

Runs one reduction round of the model-free methods (random, random_smooth and the oracle) on the
training set the overrides describe, and prints, per method, the kept fraction, the IoU of its
keep-masks with the oracle's and, on a set that knows its cue (``data=shortcut``), the share of
the cue its fill leaves. On such a set it also checks the benchmark's pilot criteria: random
removal leaves at least :data:`RANDOM_CUE_LEFT` of the cue and the oracle at most
:data:`ORACLE_CUE_LEFT`, so a perfect map and random removal must differ. Writes ``pilot.csv``
into the run dir. Takes the training config (``reduction=saliency`` settings included).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.config.registration import register
from src.config.schemas import check_ranges
from src.config.user_errors import exit_on_user_error

register()  # the configs' resolvers and schemas, in this process and in a sweep's workers

# the pilot criteria of a benchmark whose cue random removal keeps and a perfect map removes
RANDOM_CUE_LEFT = 0.8
ORACLE_CUE_LEFT = 0.1


def pilot(cfg: DictConfig) -> list[dict[str, float | str]]:
    """The model-free round's rows (see the module's doc); prints them and writes pilot.csv."""
    check_ranges(cfg)
    from pathlib import Path

    from rich.table import Table

    from src.jobs.builders import build_datamodule
    from src.reduction.pilot import model_free_round
    from src.reduction.removal_measures import KnownCue
    from src.storage.results import console, write_csv_atomic

    reduction = cfg.reduction
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    rows = model_free_round(
        datamodule.train_set,
        percentile=reduction.get("percentile", 90),
        fill=reduction.get("fill", "impute"),
        impute_noise=reduction.get("impute_noise", 0.01),
        seed=int(cfg.seed),
        oracle_margin=reduction.get("oracle_margin", 2),
        background_class=reduction.get("background_class", 0),
        cue=datamodule if isinstance(datamodule, KnownCue) else None,
    )
    table = Table(title=f"one model-free round at percentile {reduction.get('percentile', 90)} ({len(datamodule.train_set)} training images)")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    console().print(table)
    out = Path(cfg.paths.output_dir) / "pilot.csv"
    write_csv_atomic(out, rows)
    if "cue_share" in rows[0]:
        share = {row["method"]: row["cue_share"] for row in rows}
        checks = (
            (f"random leaves >= {RANDOM_CUE_LEFT:.0%} of the cue", float(share["random"]) >= RANDOM_CUE_LEFT),
            (f"the oracle leaves <= {ORACLE_CUE_LEFT:.0%} of the cue", float(share["oracle"]) <= ORACLE_CUE_LEFT),
        )
        for text, held in checks:
            console().print(f"pilot criterion: {text}: {'holds' if held else 'FAILS'}")
    console().print(f"written: {out}")
    return rows


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    pilot(cfg)


if __name__ == "__main__":
    main()
