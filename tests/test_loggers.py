"""The resolved config reaches every logger as hyperparameters, so runs can be filtered by setting."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from src.train import train

DEBUG = ("reduction.percentile=70", "trainer.max_epochs=2", "reduction.rounds=2", "trainer.limit_train_batches=2")


@pytest.mark.slow
def test_a_wandb_offline_run_holds_the_resolved_config(make_cfg, tmp_path: Path, data_root: Path) -> None:
    train(make_cfg("train", *DEBUG, "logger=wandb", "model=fcn"))
    # an offline run keeps its config only in the run's record log (config items as JSON)
    (log,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    records = written_records(log)
    reduction = stored_object(records, "src.reduction.callback.SaliencyReduction")
    data = stored_object(records, "src.data.eliret.EliretDataModule")
    net = stored_object(records, "src.models.fcn.FCN")
    assert reduction["percentile"] == 70 and net["dropout"] == 0.25
    # interpolations arrive resolved: the real data dir and epochs per round, not ${...}
    assert data["data_dir"] == f"{data_root}/eliret" and reduction["epochs_per_round"] == 1
    assert b"${" not in records


def written_records(log: Path, timeout: float = 30.0) -> bytes:
    """The offline run file once W&B's service has written its config records: after
    ``finish`` the service can still be flushing under load (seen once in CI, 7 header bytes)."""
    deadline = time.monotonic() + timeout
    records = log.read_bytes()
    while b'{"_target_":' not in records and time.monotonic() < deadline:
        time.sleep(0.5)
        records = log.read_bytes()
    return records


def stored_object(records: bytes, target: str) -> dict:
    """The config section whose ``_target_`` is ``target``, decoded from the stored JSON."""
    start = records.index(b'{"_target_":"' + target.encode())
    value, _ = json.JSONDecoder().raw_decode(records[start:].decode("utf-8", errors="replace"))
    return value


@pytest.mark.slow
def test_the_csv_logger_writes_the_config_as_hparams(make_cfg, tmp_path: Path) -> None:
    train(make_cfg("train", *DEBUG, "logger=csv"))
    hparams = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())
    assert hparams["reduction"]["percentile"] == 70 and hparams["trainer"]["max_epochs"] == 2


def test_sweep_jobs_share_a_wandb_group_and_are_named_by_what_they_sweep(tmp_path: Path) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict, read_write

    from src.loggers.build import run_names
    from tests.helpers.compose import compose_config

    cfg = compose_config("train", ["logger=wandb"], tmp_path)
    # a single run: its task and run dir, as its outputs are named
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.output_dir = str(tmp_path / "2026-01-01_00-00-00_000000")
    HydraConfig.instance().set_config(cfg)
    assert run_names() == {"name": f"{cfg.hydra.job.name} 2026-01-01_00-00-00_000000"}
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00_000001"
    sweep.mkdir(parents=True)
    # the command line as typed: seed and the model swept, the rest shared by every job
    OmegaConf.save({"hydra": {"overrides": {"task": ["seed=0,1", "model=unet,fcn", "debug=fast", "logger=wandb"]}}}, sweep / "multirun.yaml")
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(sweep)
        cfg.hydra.overrides.task = ["seed=1", "model=fcn", "debug=fast", "logger=wandb", "reduction.percentile=50"]
        cfg.hydra.sweeper.params = {"reduction.percentile": "50,90"}  # a preset's sweep
    HydraConfig.instance().set_config(cfg)
    try:
        assert run_names() == {"group": "2026-01-01_00-00-00_000001", "name": "seed=1,model=fcn,reduction.percentile=50"}
    finally:
        compose_config("train", [], tmp_path)  # leave a single-run Hydra config for later tests
