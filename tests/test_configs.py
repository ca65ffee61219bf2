"""Every config composes, and every data x model combination instantiates."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from src.config.errors import UserInputError
from src.jobs.builders import build_callbacks, build_datamodule, build_model, build_trainer
from src.loggers.build import build_loggers
from tests.helpers.folder_sets import write_folder

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


CLASSIFICATION_DATA = {"eliret_cls", "pet_cls"}


def test_groups_offer_what_the_readme_promises() -> None:
    assert set(options("trainer")) >= {"default", "cpu", "gpu", "ddp", "debug"}
    assert set(options("logger")) >= {"csv", "tensorboard", "wandb", "none"}
    assert set(options("model")) >= {"unet", "fcn", "smp", "early_exit_cnn"}
    assert set(options("data")) >= {"eliret", "membrane", "pet", "folder"} | CLASSIFICATION_DATA
    assert set(options("augment")) >= {"auto", "none", "membrane", "elastic", "shift", "dihedral"}
    assert set(options("reduction")) >= {"saliency", "none"}


@pytest.mark.parametrize("data", options("data"))
@pytest.mark.parametrize("model", options("model"))
def test_data_model_combinations_instantiate(make_cfg, data_root: Path, data: str, model: str) -> None:
    if data == "folder" and not (data_root / "folder").is_dir():
        write_folder(data_root / "folder", n=10)
    cfg = make_cfg("train", f"data={data}", f"model={model}")
    datamodule = build_datamodule(cfg)
    if (data in CLASSIFICATION_DATA) != (model == "early_exit_cnn"):
        with pytest.raises(UserInputError, match="classifi"):
            build_model(cfg, datamodule)
        return
    module = build_model(cfg, datamodule)
    assert module.hparams.in_channels == datamodule.in_channels
    if data in CLASSIFICATION_DATA:
        assert module.hparams.num_classes == datamodule.num_classes
    else:
        assert module.hparams.task == datamodule.task


@pytest.mark.slow
def test_membrane_unet_preset_trains_once_unless_asked_to_reduce(make_cfg) -> None:
    cfg = make_cfg("train", "data=membrane", "model=unet")
    assert (cfg.model.net.depth, cfg.model.net.base_width, cfg.trainer.max_epochs) == (4, 32, 120)
    assert cfg.reduction.rounds == 0 and cfg.reduction.epochs_per_round == 120
    assert not any(type(c).__name__ == "SaliencyReduction" for c in build_callbacks(cfg))
    cfg = make_cfg("train", "data=membrane", "model=unet", "reduction.rounds=3")
    assert cfg.reduction.epochs_per_round == 40
    assert any(type(c).__name__ == "SaliencyReduction" for c in build_callbacks(cfg))


@pytest.mark.parametrize("trainer", options("trainer"))
def test_trainer_options_compose(make_cfg, trainer: str) -> None:
    cfg = make_cfg("train", f"trainer={trainer}")
    assert cfg.trainer._target_.endswith("Trainer")
    if trainer in ("default", "cpu", "debug"):  # the others need GPUs or start processes
        assert build_trainer(cfg, build_callbacks(cfg), []).max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_options_instantiate(make_cfg, logger: str) -> None:
    cfg = make_cfg("train", f"logger={logger}")
    loggers = build_loggers(cfg.get("logger"))
    assert len(loggers) == (0 if logger == "none" else 1)


@pytest.mark.parametrize("preset", [f"experiment={e}" for e in options("experiment")] + [f"debug={d}" for d in options("debug")])
def test_presets_compose(make_cfg, data_root: Path, preset: str) -> None:
    cfg = make_cfg("train", preset)
    if cfg.data._target_.endswith("FolderDataModule") and not (data_root / "folder").is_dir():  # its own data, whatever ran first
        write_folder(data_root / "folder", n=10)
    build_model(cfg, build_datamodule(cfg))


@pytest.mark.parametrize("optimizer", options("model/optimizer"))
@pytest.mark.parametrize("scheduler", options("model/scheduler"))
def test_optimizer_and_scheduler_options(make_cfg, optimizer: str, scheduler: str) -> None:
    cfg = make_cfg("train", f"model/optimizer={optimizer}", f"model/scheduler={scheduler}")
    module = build_model(cfg, build_datamodule(cfg))
    trainer = build_trainer(cfg, [], [])
    module.trainer = trainer
    configured = module.configure_optimizers()
    assert configured["optimizer"].param_groups[0]["lr"] == cfg.model.optimizer.lr
    assert ("lr_scheduler" in configured) == (scheduler != "none")


def test_eval_config_composes(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("eval", f"ckpt_path={tmp_path / 'x.ckpt'}")
    assert cfg.split == "test" and instantiate(cfg.data).task == "regression"


def test_run_dirs_carry_microseconds() -> None:
    text = (CONF / "hydra" / "default.yaml").read_text()
    assert text.count("%f") == 2


def test_a_run_names_the_data_model_file_it_applied_and_what_it_sets(make_cfg, caplog: pytest.LogCaptureFixture) -> None:
    from src.jobs.training import log_data_model

    make_cfg("train", "data=membrane", "model=unet")
    with caplog.at_level("INFO", logger="src.jobs.training"):
        log_data_model()
    assert (
        "data_model/membrane_unet.yaml applied: model.net.depth=4, model.net.base_width=32, model.optimizer.lr=0.003, trainer.max_epochs=120, reduction.rounds=0"
        in caplog.text
    )
    caplog.clear()
    make_cfg("train", "data=eliret", "model=unet")  # no file for this pair
    with caplog.at_level("INFO", logger="src.jobs.training"):
        log_data_model()
    assert "data_model" not in caplog.text
