"""The explicit contracts: what a data module states (src/data/contract.py) and what a model's
kind is, each refused with one clear error before any training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.utilities.model_summary import ModelSummary
from omegaconf import DictConfig, open_dict

from src.config.errors import UserInputError
from src.data.contract import ExperimentData, experiment_data
from src.data.folder import FolderDataModule
from src.data.segmentation_dataset import SplitDataModule
from src.jobs.builders import build_datamodule, build_model, model_kind
from tests.helpers.folder_sets import write_folder


class NoTask(SplitDataModule):
    in_channels = 1
    mean = (0.0,)
    std = (1.0,)
    out_channels = 1


class PlainLightning(L.LightningDataModule):
    task = "binary"


def test_every_data_module_states_the_contract(make_cfg: Callable[..., DictConfig]) -> None:
    for data in ("eliret", "shortcut", "membrane", "pet", "eliret_cls", "pet_cls"):
        datamodule = build_datamodule(make_cfg("train", f"data={data}"))
        kind = "classification" if datamodule.task == "classification" else "segmentation"
        assert experiment_data(datamodule, kind) is datamodule


def test_a_folder_module_is_checked_without_computing_its_statistics() -> None:
    # mean and std are read from the files in setup: the check must not ask for them before
    datamodule = FolderDataModule.__new__(FolderDataModule)
    assert experiment_data(datamodule, "segmentation") is datamodule


def test_a_missing_member_is_named_and_an_alien_module_is_refused() -> None:
    with pytest.raises(UserInputError, match=r"NoTask does not state task \("):
        experiment_data(NoTask(), "segmentation")
    with pytest.raises(UserInputError, match="Classes does not state num_classes"):
        experiment_data(type("Classes", (NoTask,), {"task": "classification"})(), "classification")
    with pytest.raises(UserInputError, match="PlainLightning is not a src.data.contract.ExperimentData; derive it from"):
        experiment_data(PlainLightning())


def test_the_optional_members_default_on_the_base() -> None:
    datamodule = NoTask()
    assert (datamodule.ignore_index, datamodule.eval_window, datamodule.example_size) == (None, None, None)
    assert (datamodule.challenge_metrics, datamodule.provides_weights, datamodule.streamed) == (False, False, False)
    assert datamodule.natural_shifts == datamodule.test_splits == ()
    with pytest.raises(KeyError, match="no extra test split 'aligned'"):
        ExperimentData.split_dataloader(datamodule, "aligned")


def test_the_model_kind_is_the_modules_property(make_cfg: Callable[..., DictConfig]) -> None:
    assert model_kind(make_cfg("train", "model=unet")) == "segmentation"
    assert model_kind(make_cfg("train", "model=early_exit_cnn", "data=eliret_cls")) == "classification"
    cfg = make_cfg("train", "model=unet")
    with open_dict(cfg):
        cfg.model._target_ = "torch.nn.Identity"
    with pytest.raises(UserInputError, match=r"model._target_=torch.nn.Identity states no kind"):
        model_kind(cfg)


def test_a_classifier_on_pixel_data_is_refused_by_kind(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("train", "model=early_exit_cnn", "data=eliret")
    with pytest.raises(UserInputError, match="is a classifier; use it with data=eliret_cls"):
        build_model(cfg, build_datamodule(cfg))


def test_an_own_data_run_counts_the_flops_of_the_images_it_trains_on(tmp_path: Path, make_cfg: Callable[..., DictConfig]) -> None:
    # no data.image_size or crop_size: the images keep their own size (40 x 56 here)
    folder = write_folder(tmp_path / "folder", size=(40, 56))
    cfg = make_cfg("train", "data=folder", f"data.data_dir={folder}", "model=unet")
    datamodule = build_datamodule(cfg)
    assert datamodule.example_size == (40, 56)
    model = build_model(cfg, datamodule)
    assert tuple(model.example_input_array.shape) == (1, 1, 40, 56)
    assert ModelSummary(model).total_flops > 0
