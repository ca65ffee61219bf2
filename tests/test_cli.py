"""The command lines a user types, run as subprocesses (each costs a cold import, ~10 s)."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.config.help import misspelt_key
from src.data.eliret_generator import SPLIT_FILES, EliretSpec, generate
from src.data.png_pairs import read_split_csv
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.early import in_own_dir, started


def run_dirs(root: Path, task: str = "train") -> list[Path]:
    return sorted((root / "outputs" / task / "runs").iterdir())


@in_own_dir
def readme_tour(tmp_path: Path) -> None:
    """The README's tour as a newcomer takes it, in a fresh project dir: train, evaluate the best
    checkpoint, predict the run's test images, a two-job sweep and its report."""
    # the whole test split (debug=fast tests 2 batches), so eval and predict see what it saw
    result = run_cli("src.train", "debug=fast", "trainer.limit_test_batches=1.0", project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "data" / "eliret" / "treino.csv").exists()
    (run,) = run_dirs(tmp_path, "debug")
    metrics = json.loads((run / "metrics.json").read_text())
    assert "test/miou" in metrics and "test/miou" in result.stdout  # the rich table
    assert (run / "checkpoints" / "last.ckpt").exists() and (run / ".hydra" / "config.yaml").exists()
    record = json.loads((run / "run.json").read_text())
    best = record["best_checkpoint"]
    assert record["torch_threads"] >= 1 and record["torch_threads_reason"]  # the thread count a result depends on

    # a wrong type, read by another key through an interpolation: one line at the key written,
    # and no run dir left behind
    result = run_cli("src.train", "debug=fast", "trainer.max_epochs=abc", project_root=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == ["error: trainer.max_epochs='abc' must be a number >= 1 (or -1: no limit)."]
    assert run_dirs(tmp_path, "debug") == [run]

    # evaluated again, the best checkpoint gives the run's own test metrics
    result = run_cli("src.eval", f"ckpt_path={best}", project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (eval_run,) = run_dirs(tmp_path, "eval")
    evaluated = json.loads((eval_run / "metrics.json").read_text())
    assert set(evaluated) == {k for k in metrics if k.startswith("test/")}
    assert evaluated == pytest.approx({k: metrics[k] for k in evaluated}, abs=1e-5)
    assert "💡 Tip:" not in result.stdout + result.stderr  # Lightning's advertisement (litmodels)

    # predicted with the defaults, the run's test images score the run's own test accuracy; their
    # folder given as labels= pairs each NNNx with its NNNy there, as the default pairing does
    images = tmp_path / "test_images"
    images.mkdir()
    for x, y in read_split_csv(tmp_path / "data" / "eliret" / SPLIT_FILES["test"]):
        shutil.copy(x, images / x.name)
        shutil.copy(y, images / y.name)
    result = run_cli("src.predict", f"ckpt_path={best}", f"input={images}", f"labels={images}", f"output_dir={tmp_path / 'predicted'}", project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "predicted" / "predictions.csv") as handle:
        accuracy = [float(row["acc"]) for row in csv.DictReader(handle)]
    assert len(accuracy) == 50 and sum(accuracy) / len(accuracy) == pytest.approx(metrics["test/acc"], abs=1e-5)

    # a two-job sweep, each job in its own dir, and its report
    result = run_cli("src.train", "-m", "model=unet,fcn", "debug=fast", "logger=none", project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "debug" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()) == ["0", "1"]
    assert all((sweep / job / "metrics.json").exists() for job in ("0", "1"))
    result = run_cli("src.report", str(sweep), project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = (sweep / "report" / "report.md").read_text()
    assert "unet" in report and "fcn" in report and (sweep / "report" / "metric_vs_settings.png").exists()


@pytest.mark.slow
@pytest.mark.started_early("readme_tour", serial=True)
def test_a_newcomer_follows_the_readme_tour(tmp_path_factory: pytest.TempPathFactory) -> None:
    started(readme_tour, tmp_path_factory).result()


@pytest.mark.slow
def test_bad_value_stops_before_training_with_one_clear_line(tmp_path: Path) -> None:
    result = run_cli("src.train", "model.net.upsampling=cubic", project_root=tmp_path)
    assert result.returncode == 2
    assert "error: unknown model.net.upsampling='cubic'; choose one of transpose, bilinear, nearest." in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_unknown_key_and_unknown_option_are_refused(tmp_path: Path) -> None:
    result = run_cli("src.train", "model.net.no_such_arg=1", project_root=tmp_path)
    # refused while composing, naming the key and the keys there are (the net's settings are a typed schema)
    assert result.returncode == 2 and "error: unknown key model.net.no_such_arg: `model.net` has no 'no_such_arg'; its keys: _target_, depth," in result.stderr
    result = run_cli("src.train", "trainer.max_epoch=2", project_root=tmp_path)
    assert result.returncode == 2 and "did you mean trainer.max_epochs or trainer.min_epochs?" in result.stderr and "+trainer" not in result.stderr
    result = run_cli("src.eval", "ckpt_path=x.ckpt", "torch_thread=1", project_root=tmp_path)
    assert result.returncode == 2 and "unknown key torch_thread: did you mean torch_threads? (the config has no 'torch_thread')" in result.stderr
    # the common keys every entry point takes: torch_threads reaches the checkpoint's check
    for name, extra in (("train", ("seed=3",)), ("eval", ("seed=3",)), ("predict", ("input=x.png",))):
        assert misspelt_key(name, ["ckpt_path=missing.ckpt", *extra, "torch_threads=1"]) is None
    # a mandatory value not given: its usage in one line, no traceback
    for module, line in (
        ("src.predict", "error: missing ckpt_path, input. Usage: python -m src.predict ckpt_path=... input=... [key=value ...] (--help lists every key)"),
        ("src.eval", "error: missing ckpt_path. Usage: python -m src.eval ckpt_path=... [key=value ...] (--help lists every key)"),
    ):
        result = run_cli(module, project_root=tmp_path)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [line], result.stderr[-1500:]
    result = run_cli("src.train", "model=resnet", project_root=tmp_path)
    assert result.returncode != 0 and "Could not find 'model/resnet'" in result.stderr


@pytest.mark.slow
def test_corrupt_data_is_named_before_training(tmp_path: Path) -> None:
    data = tmp_path / "data" / "eliret"
    generate(EliretSpec(), data)
    (data / "017x.png").write_bytes(b"\x89PNG broken")
    result = run_cli("src.train", "debug=fast", project_root=tmp_path)
    assert result.returncode == 2
    assert "017x.png" in result.stderr and "corrupt" in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_a_redirected_run_prints_a_line_per_epoch_and_no_noise(tmp_path: Path) -> None:
    """Output to a file (not a terminal): one line per epoch instead of a bar rewriting itself at
    every step, and none of Lightning's non-actionable lines."""
    result = run_cli("src.train", "trainer.max_epochs=2", "reduction.rounds=2", "trainer.limit_train_batches=3", project_root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 0/1", "epoch 1/1"]
    assert all("3 steps" in line and "train/loss=" in line and "val/loss=" in line for line in lines)
    # the reduction after epoch 0 prints its lines after that epoch's line, before the next
    reduction = result.stdout.index("reduction round 1: relevance")
    assert result.stdout.index(lines[0]) < reduction < result.stdout.index(lines[1])
    assert "\r" not in output and "it/s" not in output
    noise = (
        "💡 Tip:",
        "Trainer already configured with model summary",
        "LeafSpec",
        "Total FLOPs: 0",
        "smaller than the logging interval",
        "`Trainer.fit` stopped",
    )
    for line in noise + ("Restoring states", "Loaded model weights", "detect_anomaly"):
        assert line not in output, line
    assert "Total FLOPs" in output  # the summary counts them on an example image
    assert output.count("Seed set to") == 1  # not once per handler
    table = output[output.index("saliency reduction, per round") :].splitlines()[:6]
    assert max(len(line.rstrip()) for line in table) <= 100


# the entry point run in-process by a child python that then reports whether torch was imported
TORCH_PROBE = """
import runpy, sys
sys.argv = ["src.train", *sys.argv[1:]]
try:
    runpy.run_module("src.train", run_name="__main__")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(f"exit={code} torch_imported={'torch' in sys.modules} lightning_imported={'lightning' in sys.modules}")
"""


def probe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", TORCH_PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_help_and_config_mistakes_answer_before_torch_is_imported(tmp_path: Path) -> None:
    for args, code in (
        (["--help"], 0),
        (["reduction.percentil=50"], 2),
        (["model=unett"], 1),
        (["reduction.percentile=200"], 2),
        (["data.image_size=3", "seed=-1"], 2),
        (["reduction.method=gradcan"], 2),
    ):
        result = probe(tmp_path, *args)
        assert f"exit={code} torch_imported=False lightning_imported=False" in result.stdout, (args, result.stdout[-500:], result.stderr[-1500:])
    # a misspelt key: one line naming the closest keys, not Hydra's "+key" hint
    result = probe(tmp_path, "reduction.percentil=50")
    assert result.stderr.strip().splitlines() == ["error: unknown key reduction.percentil: did you mean reduction.percentile? (`reduction` has no 'percentil')"]
    # a misspelt choice: the closest choice and the list, before torch is imported
    result = probe(tmp_path, "reduction.method=gradcan")
    assert "unknown reduction.method='gradcan'; did you mean gradcam? choose one of prediction, gradient," in result.stderr


@pytest.mark.slow
def test_help_lists_only_the_options_a_user_can_pick(tmp_path: Path) -> None:
    result = probe(tmp_path, "--help", "data=folder")
    assert "_schema" not in result.stdout and "schema/" not in result.stdout
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if line.startswith(("data: ", "reduction: ", "model/optimizer: ")))
    assert lines == {"data": "eliret, eliret_cls, folder, membrane, pet, pet_cls, shortcut", "reduction": "none, saliency", "model/optimizer": "adam, sgd"}
    assert "_target_: src.data.folder.FolderDataModule" in result.stdout  # the config as composed with the overrides


@pytest.mark.slow
def test_a_user_error_is_printed_once(tmp_path: Path) -> None:
    result = run_cli("src.train", "reduction.percentile=200", project_root=tmp_path)
    assert result.returncode == 2
    message = "reduction.percentile=200 must be in (0, 100]"
    assert (result.stdout + result.stderr).count(message) == 1 and f"error: {message}" in result.stderr
    assert not (tmp_path / "outputs" / "train" / "runs").exists() or not run_dirs(tmp_path)  # no run dir for a refused command
    # a run dir the command named is never removed: the error stays in its log
    named = tmp_path / "mine"
    result = run_cli("src.train", "reduction.percentile=200", f"hydra.run.dir={named}", project_root=tmp_path)
    assert result.returncode == 2 and message in (named / "train.log").read_text()


def test_help_into_a_pipe_closed_early_ends_quietly() -> None:
    # `python -m src.train --help | head -1`: the reader is gone before the help is written
    child = subprocess.Popen([sys.executable, "-m", "src.train", "--help"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.close()
    _, errors = child.communicate(timeout=120)
    assert child.returncode == 0 and "Traceback" not in errors and "BrokenPipe" not in errors, errors
