"""``python -m results [--only a,b] [--jobs N] [--from-json]`` (``make results``): rerun every run
behind the docs' results tables, then write results/latest.json and docs/results.md."""

from __future__ import annotations

import argparse
import datetime
import json
from concurrent.futures import ThreadPoolExecutor

from bench.timing import machine
from results.page import render
from results.runs import BY_NAME, MEMBRANE_DATA, ROOT, RUNS, execute
from src.config.schemas import with_defaults
from src.storage.atomic import write_bytes_atomic
from src.storage.provenance import git_state
from src.storage.results import write_json_atomic

LATEST = ROOT / "results" / "latest.json"
PAGE = ROOT / "docs" / "results.md"


def all_cell_accuracy() -> float:
    """Pixel accuracy of guessing "cell" everywhere on the membrane validation images."""
    from src.data.membrane import MembraneDataModule

    datamodule = with_defaults(MembraneDataModule, str(MEMBRANE_DATA))
    datamodule.setup()
    return 1.0 - float(datamodule.splits["val"].masks.float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated run names to rerun (the rest are kept from results/latest.json)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (each on one torch thread)")
    parser.add_argument("--from-json", action="store_true", help="rewrite docs/results.md from results/latest.json without running")
    args = parser.parse_args()
    if not (MEMBRANE_DATA / "train" / "image").is_dir() and not (MEMBRANE_DATA / "train-volume.tif").exists():
        raise SystemExit(f"the membrane runs need the ISBI 2012 data at {MEMBRANE_DATA}; set ISBI_DATA_DIR to your copy.")
    previous = json.loads(LATEST.read_text()) if LATEST.exists() else {"runs": {}}
    if args.from_json:
        meta, runs = previous["meta"], previous["runs"]
    else:
        # the long membrane runs first, so the pool ends with short ones
        names = [n for n in args.only.split(",") if n] or sorted((run.name for run in RUNS), key=lambda n: not BY_NAME[n].needs_membrane)
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise SystemExit(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
        started = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
        out = ROOT / "outputs" / "results" / started
        out.mkdir(parents=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            done = dict(zip(names, pool.map(lambda name: execute(BY_NAME[name], out), names)))
        runs = {**previous["runs"], **{name: {**record, "label": BY_NAME[name].label} for name, record in done.items()}}
        meta = {
            "date": datetime.date.today().isoformat(),
            "git": git_state(ROOT),
            "machine": machine(),
            "jobs": args.jobs,
            "output_dir": str(out.relative_to(ROOT)),
        }
        write_json_atomic(LATEST, {"meta": meta, "runs": runs})
    missing = [run.name for run in RUNS if run.name not in runs]
    if missing:
        raise SystemExit(f"no numbers yet for {', '.join(missing)}; run them: python -m results --only {','.join(missing)}")
    write_bytes_atomic(PAGE, (render(meta, runs, all_cell_accuracy()) + "\n").encode())
    print(f"wrote {PAGE.relative_to(ROOT)} and {LATEST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
