"""How fast the CLI answers without training: ``--help`` and the three kinds of config mistake,
each a fresh ``python -m src.train`` process (the target: at most 2 s, torch never imported)."""

from __future__ import annotations

import subprocess
import sys

from bench.timing import interleaved, median

# what the user typed: the answer's exit code (0 help, 1 Hydra's composition error, 2 ours)
COMMANDS = {
    "--help": (["--help"], 0),
    "misspelt key (reduction.percentil=50)": (["reduction.percentil=50"], 2),
    "misspelt option (model=unett)": (["model=unett"], 1),
    "out-of-range value (reduction.percentile=200)": (["reduction.percentile=200"], 2),
}


def measure(repetitions: int) -> dict[str, float]:
    """Median wall seconds of each command, interleaved."""

    def arm(args: list[str], code: int):
        def run() -> None:
            result = subprocess.run([sys.executable, "-m", "src.train", *args], capture_output=True)
            if result.returncode != code:
                raise RuntimeError(f"src.train {' '.join(args)} exited {result.returncode}, not {code}: {result.stderr.decode()[-500:]}")

        return run

    times = interleaved({name: arm(args, code) for name, (args, code) in COMMANDS.items()}, repetitions)
    return {name: median(values) for name, values in times.items()}
