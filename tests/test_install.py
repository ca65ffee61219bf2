"""A built wheel, installed (not editable) into a fresh venv, runs from outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers.cli import child_env
from tests.helpers.early import in_own_dir, started

ROOT = Path(__file__).resolve().parents[1]


@in_own_dir
def wheel_from_outside_the_checkout(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv and run it from outside the checkout."""
    data_root = tmp_path / "data"
    source = tmp_path / "source"  # build from a copy: no build/ or egg-info in the checkout
    shutil.copytree(ROOT, source, ignore=_top_level(".venv", ".git", "outputs", "data", "tests", "docs", "build"), symlinks=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("salseg-*.whl")
    venv = tmp_path / "venv"
    # a venv without its own pip (seconds saved): this environment's pip installs into it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True)
    # the dependencies come from this test's environment (a path entry: its .pth files, the
    # checkout's editable install among them, are not processed)
    site = subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    )
    Path(site.stdout.strip(), "salseg_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in child_env().items() if k not in ("PROJECT_ROOT", "PYTHONPATH")}
    where = subprocess.run([venv / "bin" / "python", "-c", "import src; print(src.__file__)"], cwd=work, env=env, capture_output=True, text=True, check=True)
    assert str(venv) in where.stdout  # the installed package, not the checkout

    run = subprocess.run(
        [venv / "bin" / "salseg-train", "debug=fast", f"paths.data_dir={data_root}", "callbacks.progress_bar=null"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (run_dir,) = (work / "outputs" / "debug" / "runs").iterdir()
    assert (run_dir / "metrics.json").exists()
    report = subprocess.run([venv / "bin" / "salseg-report", str(run_dir)], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0 and (run_dir / "report" / "report.md").exists(), report.stderr[-3000:]
    helps = {
        script: subprocess.Popen([venv / "bin" / script, "--help"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for script in ("salseg-eval", "salseg-predict")
    }
    for script, process in helps.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0 and "ckpt_path" in out, f"{script}: {err[-2000:]}"


@pytest.mark.slow
@pytest.mark.started_early("wheel_from_outside_the_checkout", serial=True)
def test_the_wheel_trains_and_reports_from_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(wheel_from_outside_the_checkout, tmp_path_factory).result()


def _top_level(*names: str):
    """A copytree filter that skips these names in the root folder only, and caches anywhere."""

    def ignore(folder: str, entries: list[str]) -> set[str]:
        skipped = {e for e in entries if e == "__pycache__" or e.endswith(".egg-info")}
        return skipped | (set(names) & set(entries) if Path(folder) == ROOT else set())

    return ignore
