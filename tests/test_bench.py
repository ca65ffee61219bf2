"""The benchmark's pieces at their smallest sizes: each section runs through the real code and
reports what it claims (no speed is asserted here: speed goals live in `make bench`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import data, early_exit, fills, overhead, relevance, threads
from bench.__main__ import MODES, run
from bench.epoch_parts import Stopwatch
from bench.page import early_exit_section, markdown
from bench.pet_layout import write_pet
from bench.reference_loop import plain_fit
from src.config.schemas import with_defaults
from src.data.pet import PetDataModule


@pytest.mark.slow
def test_plain_loop_learns_eliret(data_root: Path) -> None:
    from src.data.eliret import EliretDataModule

    datamodule = with_defaults(EliretDataModule, data_dir=str(data_root / "eliret"))
    datamodule.prepare_data()
    datamodule.setup("fit")
    train, val = datamodule.splits["train"], datamodule.splits["val"]
    watch = Stopwatch()
    before = plain_fit((train.images, train.masks), (val.images, val.masks), "regression", 1, 10)
    after = plain_fit((train.images, train.masks), (val.images, val.masks), "regression", 6, 10, watch=watch)
    assert after < before and len(watch.epochs) == 5  # the sixth epoch has no next start to close it
    assert all(epoch["model_work"] > 0 and epoch["data"] > 0 and epoch["epoch"] > epoch["model_work"] for epoch in watch.epochs)


@pytest.mark.slow
def test_overhead_times_every_epoch_of_both_arms(data_root: Path) -> None:
    result = overhead.measure(str(data_root), {"eliret": 3}, repetitions=1)["eliret"]
    assert set(result["seconds_per_epoch"]) == {"plain", "framework"}
    assert result["overhead_ratio"] == pytest.approx(result["seconds_per_epoch"]["framework"] / result["seconds_per_epoch"]["plain"])
    assert all(v > 0 for v in result["seconds_per_epoch"].values())
    plain, framework = result["parts"]["plain"], result["parts"]["framework"]
    # the framework's own parts were seen in its runs, and the plain loop has none of them
    for part in ("metrics", "logging", "step_code", "progress_bar", "checkpoints", "data", "model_work", "loss"):
        assert framework[part] > 0, part
    assert plain["metrics"] == plain["checkpoints"] == plain["progress_bar"] == 0
    for parts in (plain, framework):
        assert sum(v for k, v in parts.items() if k != "epoch") == pytest.approx(parts["epoch"])


@pytest.mark.slow
def test_relevance_pass_reports_each_method_and_packed_masks() -> None:
    # every method `make bench` times (the oracle with the ground truth it ranks by)
    result = relevance.measure(1, (20, 40), train_images=20)
    assert set(result["methods"]) == set(relevance.METHODS)
    assert result["mask_bytes_per_image"] == 32 * 32 / 8
    assert set(result["growth_prediction"]) == {20, 40}


def test_fills_report_each_fill_per_image_at_one_and_three_rounds() -> None:
    result = fills.measure(1, 4)
    assert set(result["fills"]) == {f"{fill}@{rounds}" for fill in ("zero", "mean", "blur", "impute") for rounds in ("1 round", "3 rounds")}
    for timing in result["fills"].values():
        assert timing["ms_per_image"] > 0 and timing["pet_train_set_s"] == pytest.approx(timing["ms_per_image"] / 1000 * result["pet_train_images"])


def test_synthetic_pet_loads_in_the_real_layout(tmp_path: Path) -> None:
    base = write_pet(tmp_path, count=40, size=(60, 80))
    datamodule = with_defaults(PetDataModule, data_dir=str(base), image_size=32)
    datamodule.setup("fit")
    assert sum(len(s) for s in datamodule.splits.values()) == 40
    assert datamodule.train_set.images.dtype == torch.uint8
    assert set(datamodule.train_set.masks.unique().tolist()) == {0, 1, 2}


@pytest.mark.slow
def test_loader_and_model_rates_per_data_set(data_root: Path, tmp_path: Path) -> None:
    pet = write_pet(tmp_path, count=40, size=(140, 140))
    result = data.measure(str(data_root), str(pet), 1, ("eliret", "pet"))
    assert result["pet"]["augmentation"] == "JointAugment" and result["eliret"]["augmentation"] == "none"
    for rates in result.values():
        assert rates["model_images_per_s"] > 0 and rates["loader_2_workers_images_per_s"] > 0


@pytest.mark.slow
def test_quick_bench_writes_json_and_markdown(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # every section of the quick plan at its smallest size: what is checked is what the run writes
    # (the thread section's fresh processes, 12 of them, are tested on their own below)
    smallest = {"overhead_epochs": {"eliret": 3, "membrane": 3}, "repetitions": 1, "relevance_sizes": (100,), "thread_repetitions": 0}
    monkeypatch.setitem(MODES, "quick", {**MODES["quick"], **smallest})
    results = run("quick", data_root, tmp_path)
    stored = json.loads((tmp_path / "latest.json").read_text())
    assert stored["overhead"]["eliret"]["overhead_ratio"] == results["overhead"]["eliret"]["overhead_ratio"]
    assert (tmp_path / "latest.md").read_text() == markdown(results)
    assert "overhead_ratio" in (tmp_path / "latest.md").read_text()
    assert "impute@3 rounds" in (tmp_path / "latest.md").read_text()


@pytest.mark.slow
def test_early_exit_time_is_taken_apart_per_layout(data_root: Path, tmp_path: Path) -> None:
    pet = write_pet(tmp_path, count=96, size=(48, 48))
    overrides = [f"paths.data_dir={data_root}", f"data.data_dir={pet}", "data=pet_cls", "model=early_exit_cnn", "data.image_size=32", "data.batch_size=16"]
    result = early_exit.measure_case(overrides, repetitions=1, epochs=1, batch1_samples=4)
    assert set(result) >= {"contiguous/1", "contiguous/64", "channels_last/64", "flops_fraction", "fraction_reaching_stage"}
    assert result["fraction_reaching_stage"][0] == 1.0 and 0 < result["flops_fraction"] <= 1
    for key in ("contiguous/64", "channels_last/64"):
        parts = result[key]
        assert sum(parts["stage_time_share"]) == pytest.approx(1.0) and sum(parts["stage_flops_share"]) == pytest.approx(1.0)
        assert parts["predicted_time_fraction"] + parts["sub_batch_cost"] + parts["decision_cost"] == pytest.approx(parts["time_fraction"])
        assert parts["time_over_flops_fraction"] == pytest.approx(parts["time_fraction"] / result["flops_fraction"])
    page = "\n".join(early_exit_section({"pet_cls_32": result}))
    assert "### pet_cls_32" in page and "| channels_last, batch 64 |" in page


def test_the_thread_section_compares_the_default_with_the_best_arm(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # each arm's runs replaced by fixed fit seconds: what is checked is the bookkeeping and the page
    seconds = {"null": [3.4, 3.5], "1": [4.4, 4.3], "2": [3.2, 3.1]}
    busy = {"null": [4.1, 4.2], "1": [4.0, 4.1], "2": [11.5, 11.7]}
    state = {"table": seconds}

    def arm(threads_: str, data_dir: str, epochs: int, sink: list[float]):
        values = iter(state["table"][threads_])
        return lambda: sink.append(next(values))

    monkeypatch.setattr(threads, "_arm", arm)
    monkeypatch.setattr(threads, "usable_cores", lambda: [0, 1])

    class Busy:
        def __enter__(self):
            state["table"] = busy

        def __exit__(self, *exc):
            state["table"] = seconds

    monkeypatch.setattr(threads, "one_core_busy", Busy)
    results = threads.measure(str(data_root), epochs=2, repetitions=2)
    assert results["idle"]["fit_seconds"] == pytest.approx({"default": 3.45, "1 thread": 4.35, "2 threads (every core)": 3.15})
    assert results["idle"]["default_over_best"] == round(3.45 / 3.15, 2) and results["idle"]["within_target"]
    assert results["one core busy"]["default_over_best"] == round(4.15 / 4.05, 2)
    page = markdown({**json.loads((Path(__file__).parents[1] / "bench" / "measured" / "latest.json").read_text()), "threads": results})
    assert "## Thread default" in page and "| one core busy | 4.15 | 4.05 | 11.6 | 1.02 | yes |" in page
