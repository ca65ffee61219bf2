"""Through a real Slurm scheduler (``scripts/one_node_slurm.sh`` starts a one-node cluster; ``.ci/run``
does): docs/cluster.md's sweep and batch script as written, DDP across a job's tasks against DDP
outside Slurm, a pre-empted job and a sweep job past its time limit that requeue and resume to the
uninterrupted results, and a job the scheduler refuses.

All the jobs are started together when the suite starts (tests/conftest.py; the node offers more
CPUs than the machine has, so they run side by side, beside the other tests) and each test, run
last, checks its part. Without ``sbatch`` the tests skip; in CI
(``CI=true``) a missing scheduler fails them instead.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.compose import compose_config
from tests.helpers.docs_pages import BLOCK
from tests.helpers.early import started
from tests.helpers.runs import logged_epochs

# one worker runs the whole module under pytest-xdist: its jobs share one campaign fixture
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm"), pytest.mark.started_early("start_campaign")]
HERE = Path(__file__).parent
HASH = re.compile(r"reduction round (\d+): masks sha256 ([0-9a-f]{64}) \(rank (\d+) of (\d+)\)")
TIMING = {"fit_seconds", "relevance_seconds", "fill_seconds", "swap_seconds"}
DEADLINE_S = 600


def _doc_blocks() -> tuple[str, str]:
    """docs/cluster.md's batch script and its CPU sweep command, as written."""
    blocks = BLOCK.findall((ROOT / "docs" / "cluster.md").read_text())
    script = next(body for _, title, body in blocks if title == "ddp_cpu.sbatch")
    sweep = next(body for language, _, body in blocks if language == "bash" and "hydra/launcher=slurm" in body)
    return script, sweep


def _arguments(command: str, program: str = "src.train") -> list[str]:
    """The overrides of a ``python -m src.train ...`` command (continuation lines joined)."""
    words = command.replace("\\\n", " ").split()
    return words[words.index(program) + 1 :]


def _scheduler_or_skip() -> None:
    reason = None
    if shutil.which("sbatch") is None:
        reason = "no Slurm here (sbatch not found); `sudo scripts/one_node_slurm.sh` starts a one-node cluster"
    elif "idle" not in subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout:
        reason = "Slurm is installed but no node is idle; `sudo scripts/one_node_slurm.sh` starts the one-node cluster"
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    if reason:
        pytest.skip(reason)


def _job_state(job: str) -> dict[str, str]:
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    return dict(re.findall(r"(JobState|Restarts|Reason)=(\S+)", shown))


def _wait_for_job(job: str, deadline: float) -> dict[str, str]:
    while time.time() < deadline:
        state = _job_state(job)
        if state.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return state
        time.sleep(1)
    raise AssertionError(f"job {job} did not end in time: {_job_state(job)}")


@dataclass
class Campaign:
    root: Path  # PROJECT_ROOT of the Slurm jobs
    sweep: subprocess.CompletedProcess
    timed_out_sweep: subprocess.CompletedProcess
    ddp_job: str
    ddp_state: dict[str, str]
    preempted_job: str
    preempted_state: dict[str, str]
    local_ddp: subprocess.CompletedProcess
    local_root: Path
    notes: dict[str, object] = field(default_factory=dict)

    def run(self, job: str) -> Path:
        return self.root / "outputs" / "train" / "runs" / f"slurm-{job}.0"

    def sweep_dir(self, result: subprocess.CompletedProcess) -> Path:
        (found,) = re.findall(r"sweep output dir : (\S+)", result.stdout + result.stderr)
        return Path(found)


def _finished(process: subprocess.Popen, deadline: float) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=max(1.0, deadline - time.time()))
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def start_campaign(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Campaign]:
    """Submit every job now; the function returned gathers them. Most of the campaign is waiting
    on the scheduler (a job held until its time limit), so the conftest starts it with the suite."""
    _scheduler_or_skip()
    script, sweep_command = _doc_blocks()
    root = tmp_path_factory.mktemp("slurm")
    local_root = tmp_path_factory.mktemp("local_ddp")
    # the data every job reads, generated once (jobs that generate it side by side would race)
    data = compose_config("train", ["data.n_per_class=40", f"paths.data_dir={root / 'data'}"], root / "compose")
    from src.jobs.builders import build_datamodule

    build_datamodule(data).prepare_data()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PROJECT_ROOT": str(root),
        "PYTHONPATH": os.pathsep.join([str(HERE / "reliability"), str(ROOT)]),
        "WANDB_MODE": "offline",
    }
    (root / "ddp_cpu.sbatch").write_text(script)
    deadline = time.time() + DEADLINE_S

    def submit() -> str:
        return subprocess.run(["sbatch", "--parsable", "ddp_cpu.sbatch"], cwd=root, env=env, capture_output=True, text=True, check=True).stdout.strip()

    def python(*args: str, cwd: Path = root, extra: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env={**env, **(extra or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    sweep_args = _arguments(sweep_command)
    timed_out_args = [a if a != "seed=0,1" else "seed=0" for a in sweep_args] + [
        # in its first run the job waits at epoch 1 (epoch 0's checkpoint written) until Slurm's
        # signal comes: 40 s before the 3 min limit, and up to 60 s earlier (Slurm's resolution),
        # so at least 80 s in, time enough to reach epoch 1 beside the rest of the suite (the
        # wait overlaps the other tests)
        "+callbacks.stall._target_=killpoints.StallUntilRequeued",
        "+callbacks.stall.epoch=1",
        "hydra.launcher.timeout_min=3",
        "hydra.launcher.signal_delay_s=40",
        "hydra.launcher.max_num_timeout=2",
    ]
    sweep = python("src.train", *sweep_args)
    timed_out = python("src.train", *timed_out_args)
    ddp_job, preempted_job = submit(), submit()
    local = python("src.train", *_arguments(script), cwd=ROOT, extra={"PROJECT_ROOT": str(local_root), "SALSEG_DATA_DIR": str(root / "data")})

    def gather() -> Campaign:
        # pre-empt the second job once it has logged 3 epochs, then wait for its requeued run
        preempted_run = root / "outputs" / "train" / "runs" / f"slurm-{preempted_job}.0"
        while logged_epochs(preempted_run) < 3:
            assert time.time() < deadline, f"job {preempted_job} logged no 3 epochs: {_job_state(preempted_job)}"
            assert _job_state(preempted_job).get("JobState") in ("PENDING", "RUNNING", "CONFIGURING"), _job_state(preempted_job)
            time.sleep(0.5)
        subprocess.run(["scancel", "--signal=USR1", preempted_job], check=True)
        signalled_after = logged_epochs(preempted_run)
        campaign = Campaign(
            root=root,
            sweep=_finished(sweep, deadline),
            timed_out_sweep=_finished(timed_out, deadline),
            ddp_job=ddp_job,
            ddp_state=_wait_for_job(ddp_job, deadline),
            preempted_job=preempted_job,
            preempted_state=_wait_for_job(preempted_job, deadline),
            local_ddp=_finished(local, deadline),
            local_root=local_root,
        )
        campaign.notes["signalled_after_epochs"] = signalled_after
        return campaign

    return gather


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    # started with the suite (the conftest); under pytest-xdist, whose worker may tear a module
    # fixture down between two of its tests, it starts here, once
    return started(start_campaign, tmp_path_factory).result()


def _metrics(run: Path) -> dict[str, float]:
    return json.loads((run / "metrics.json").read_text())


def _masks(run: Path) -> dict[str, bytes]:
    return {path.parent.name: path.read_bytes() for path in sorted((run / "reduction").glob("round_*/masks.npz"))}


def _rounds(run: Path) -> list[dict[str, str]]:
    with (run / "reduction" / "rounds.csv").open() as file:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(file)]


def _hashes(run: Path) -> dict[tuple[int, int], str]:
    """(round, rank) -> the masks' sha256 each rank logged, from every log of the run."""
    found = {}
    for log in run.glob("*.log"):
        for round_, digest, rank, world in HASH.findall(log.read_text()):
            assert world == "2"
            found[int(round_), int(rank)] = digest
    return found


def _logged_epoch_numbers(run: Path) -> list[str]:
    with (run / "csv" / "metrics.csv").open() as file:
        return [row["epoch"] for row in csv.DictReader(file) if row.get("val/loss")]


def _same_results(run: Path, reference: Path) -> None:
    assert _metrics(run) == _metrics(reference)
    assert _masks(run) == _masks(reference) and len(_masks(run)) == 3
    assert _rounds(run) == _rounds(reference)


def test_a_sweep_through_slurm_writes_its_summary_and_report(campaign: Campaign) -> None:
    result = campaign.sweep
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = campaign.sweep_dir(result)
    with (sweep_dir / "sweep_summary.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(row["overrides"].split()[-1], row["status"]) for row in rows] == [("seed=0", "ok"), ("seed=1", "ok")]
    for job, row in enumerate(rows):
        metrics = _metrics(sweep_dir / str(job))
        assert float(row["test/miou"]) == pytest.approx(metrics["test/miou"], rel=1e-6)
    assert _metrics(sweep_dir / "0") != _metrics(sweep_dir / "1")  # the seeds differ
    # a CPU run asks Slurm for no GPU
    submissions = list((sweep_dir / ".submitit").rglob("*_submission.sh"))
    assert submissions and not any("gpus" in path.read_text() for path in submissions)
    # no accounting here: one line, not a warning per poll
    output = result.stdout + result.stderr
    assert output.count("sacct") == 1 and "Bypassing sacct error" not in output
    report = run_cli("src.report", str(sweep_dir), project_root=campaign.root)
    assert report.returncode == 0, report.stderr[-2000:]
    text = (sweep_dir / "report" / "report.md").read_text()
    assert "seed" in text and "test/miou" in text


def test_ddp_across_slurm_tasks_equals_ddp_outside_slurm(campaign: Campaign) -> None:
    assert campaign.ddp_state["JobState"] == "COMPLETED", campaign.ddp_state
    assert campaign.local_ddp.returncode == 0, campaign.local_ddp.stderr[-3000:]
    run = campaign.run(campaign.ddp_job)
    (local,) = (campaign.local_root / "outputs" / "train" / "runs").iterdir()
    hashes = _hashes(run)
    assert sorted(hashes) == [(r, rank) for r in (1, 2, 3) for rank in (0, 1)]
    assert all(hashes[r, 0] == hashes[r, 1] for r in (1, 2, 3))  # both ranks hold the same masks
    assert hashes == _hashes(local)
    assert (run / ".hydra_rank1").is_dir() and (run / "train_rank1.log").is_file()
    _same_results(run, local)


def test_a_preempted_job_requeues_itself_and_resumes_to_the_uninterrupted_result(campaign: Campaign) -> None:
    state = campaign.preempted_state
    assert state["JobState"] == "COMPLETED" and state["Restarts"] == "1", state
    run = campaign.run(campaign.preempted_job)
    record = json.loads((run / "run.json").read_text())
    assert len(record["resumed"]) == 1 and record["resumed"][0]["from_checkpoint"].endswith("last.ckpt")
    log = (run.parent.parent.parent.parent / f"slurm-{campaign.preempted_job}.out").read_text()
    assert "requeued before epoch" in log
    _same_results(run, campaign.run(campaign.ddp_job))
    # the resumed run's logs continue the first run's rows: every epoch once, as uninterrupted
    assert _logged_epoch_numbers(run) == _logged_epoch_numbers(campaign.run(campaign.ddp_job))
    assert campaign.notes["signalled_after_epochs"] < 6


def test_a_sweep_job_past_its_time_limit_is_requeued_and_resumes_to_the_uninterrupted_result(campaign: Campaign) -> None:
    result = campaign.timed_out_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    job_dir = campaign.sweep_dir(result) / "0"
    logs = "".join(path.read_text() for path in (job_dir.parent / ".submitit").rglob("*_log.out"))
    assert "this job is timed-out" in logs
    record = json.loads((job_dir / "run.json").read_text())
    assert record["resumed"] and record["resumed"][0]["from_checkpoint"].endswith("last.ckpt")
    _same_results(job_dir, campaign.sweep_dir(campaign.sweep) / "0")


def test_a_job_the_scheduler_refuses_names_the_option_to_set(campaign: Campaign) -> None:
    result = run_cli(
        "src.train", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=nope", "trainer.accelerator=cpu", "seed=0,1", project_root=campaign.root
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Slurm refused the job") and "invalid partition" in last
    assert "set hydra.launcher.partition" in last and "debug" in last  # the partitions there are
    assert "Traceback" not in result.stderr
