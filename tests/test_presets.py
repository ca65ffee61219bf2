"""Every preset of the original study's experiments runs as written (``experiment=NAME``), one step each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.train import train
from tests.helpers.folder_sets import write_folder
from tests.helpers.pet_sets import make_pet
from tests.helpers.shared_data import SHARED, needs_shared

# one training batch, one validation and test batch, one epoch per reduction round
ONE_STEP = ("++trainer.fast_dev_run=1", "++reduction.epochs_per_round=1", "early_exit.timing_samples=2")
DATA = {
    "membrane_unet": (f"data.data_dir={SHARED}",),
    "membrane_unet_noskip": (f"data.data_dir={SHARED}",),
    "reduction_study_membrane": (f"data.data_dir={SHARED}",),
}
PRESETS = [
    "eliret_fcn",
    "eliret_unet",
    "eliret_maior",
    "eliret_early_exit",
    "pet_unet_reduction",
    "reduction_study_eliret",
    "folder_unet",
    *(pytest.param(name, marks=needs_shared) for name in DATA),
]


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_runs_one_step(make_cfg, tmp_path: Path, name: str) -> None:
    extra = DATA.get(name, ())
    if name == "eliret_early_exit":  # its own small set: the shared data dir holds another eliret_cls
        extra = (f"data.data_dir={tmp_path / 'eliret_cls'}", "data.n_per_class=24")
    if name == "pet_unet_reduction":
        extra = (f"data.data_dir={make_pet(tmp_path / 'pet')}", "data.image_size=32", "data.batch_size=4")
    if name == "folder_unet":
        extra = (f"data.data_dir={write_folder(tmp_path / 'folder', n=10, size=(40, 36))}",)
    metrics = train(make_cfg("train", f"experiment={name}", *ONE_STEP, *extra))
    # val/test metrics present and finite (early-exit policy figures may be NaN after one batch)
    scores = {k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}
    assert scores and all(value == value for value in scores.values())
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics, nan_ok=True)


def test_eliret_maior_scores_the_larger_images(make_cfg) -> None:
    cfg = make_cfg("train", "experiment=eliret_maior")
    assert cfg.data.test_split == "maior" and cfg.augment._target_ == "src.data.augment.shift"
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup()
    sizes = {tuple(batch["image"].shape[-2:]) for batch in datamodule.test_dataloader()}
    assert sizes == {(72, 88), (80, 88)} and len(datamodule.test_dataloader()) == 6
