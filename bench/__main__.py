"""``python -m bench [--quick]`` (``make bench`` / ``make bench-quick``): every section, then
bench/measured/latest.json and latest.md (and a dated copy of each)."""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from pathlib import Path

import torch

from bench import cli, data, early_exit, fills, gpu, overhead, relevance, threads
from bench.page import markdown
from bench.pet_layout import PET_SIZE, write_pet
from bench.timing import machine, run_probe
from src.storage.atomic import write_bytes_atomic
from src.storage.results import write_json_atomic

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parents[1]
SHARED_MEMBRANE = ROOT.parent / "shared" / "data" / "isbi2012_membrane"

# what each mode runs: epochs per overhead run and data set, repetitions, sizes
MODES = {
    "full": {
        "overhead_epochs": {"eliret": 10, "membrane": 4},
        "repetitions": 3,
        "overhead_repetitions": 5,
        "startup": True,
        "thread_epochs": 8,
        "thread_repetitions": 4,
        "relevance_sizes": (100, 1000, 10000),
        "fill_images": 200,
        "data_sets": ("eliret", "membrane", "pet"),
        "early_exit_epochs": 3,
        "memory": True,
    },
    "quick": {
        "overhead_epochs": {"eliret": 5, "membrane": 3},
        "repetitions": 2,
        "overhead_repetitions": 2,
        "startup": False,
        "thread_epochs": 4,
        "thread_repetitions": 2,
        "relevance_sizes": (100, 1000),
        "fill_images": 40,
        "data_sets": ("eliret", "membrane"),
        "early_exit_epochs": 0,
        "memory": False,
    },
}


def run(mode: str, data_dir: Path, results_dir: Path) -> dict:
    plan = dict(MODES[mode])
    membrane = Path(os.environ.get("ISBI_DATA_DIR", data_dir / "isbi2012_membrane"))
    if not membrane.is_dir():
        log.warning("no ISBI membrane data at %s (set ISBI_DATA_DIR): its figures are left out", membrane)
        plan["overhead_epochs"] = {k: v for k, v in plan["overhead_epochs"].items() if k != "membrane"}
        plan["data_sets"] = tuple(d for d in plan["data_sets"] if d != "membrane")
    reps = plan["repetitions"]
    data_root = str(data_dir)
    pet_dir = data_dir / "bench_pet"
    started = time.perf_counter()
    results: dict = {"mode": mode, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine()}

    def section(name: str, fn) -> None:
        log.info("== %s", name)
        t = time.perf_counter()
        results[name] = fn()
        results.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t, 1)

    section("overhead", lambda: overhead.measure(data_root, plan["overhead_epochs"], plan["overhead_repetitions"]))
    if plan["startup"]:
        section("startup", lambda: overhead.startup(data_root, 2))
    if plan["thread_repetitions"]:
        section("threads", lambda: threads.measure(data_root, plan["thread_epochs"], plan["thread_repetitions"]))
    section("cli", lambda: cli.measure(reps))
    methods = relevance.METHODS if mode == "full" else ("prediction", "gradient")
    section("relevance", lambda: relevance.measure(min(reps, 2), plan["relevance_sizes"], methods))
    section("fills", lambda: fills.measure(min(reps, 2), plan["fill_images"]))
    if "pet" in plan["data_sets"]:
        write_pet(pet_dir / "small", count=400)
    section("data", lambda: data.measure(data_root, str(pet_dir / "small"), reps, plan["data_sets"]))
    if plan["early_exit_epochs"]:
        shapes = write_pet(pet_dir / "shapes", count=1024, size=(160, 160))
        section("early_exit", lambda: early_exit.measure(data_root, str(shapes), reps, plan["early_exit_epochs"]))
    if plan["memory"]:

        def memory() -> dict:
            full_size = write_pet(pet_dir / "full", count=PET_SIZE, size=(260, 300))
            return {
                "pet_128": run_probe("bench.memory_probe", "pet", "--pet-dir", str(full_size), "--size", "128"),
                "pet_256": run_probe("bench.memory_probe", "pet", "--pet-dir", str(full_size), "--size", "256"),
                **({"membrane_512": run_probe("bench.memory_probe", "membrane512", "--data-dir", data_root)} if membrane.is_dir() else {}),
            }

        section("memory", memory)
    if torch.cuda.is_available():
        section("gpu", lambda: {"128": gpu.throughput("cuda", 128, 32, 50), "512": gpu.throughput("cuda", 512, 8, 20)})
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = markdown(results)
    for name in ("latest", f"{stamp}-{mode}"):
        write_json_atomic(results_dir / f"{name}.json", results)
        write_bytes_atomic(results_dir / f"{name}.md", text.encode())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short version (under 2 minutes)")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("SALSEG_DATA_DIR", ROOT / "data")), help="where eliret and the synthetic Pet are generated"
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "measured")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "src"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("FORCE_COLOR", "1")  # progress bars and tables render as in a terminal
    if "ISBI_DATA_DIR" not in os.environ and SHARED_MEMBRANE.is_dir():
        os.environ["ISBI_DATA_DIR"] = str(SHARED_MEMBRANE)
    results = run("quick" if args.quick else "full", args.data_dir, args.results)
    print(markdown(results))
    print(f"written: {args.results / 'latest.json'} and latest.md ({results['total_seconds']} s)")


if __name__ == "__main__":
    main()
