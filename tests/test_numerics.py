"""The GPU numeric settings run on the CPU too: bf16 autocast through the trainer's precision,
the channels_last layout and torch.compile, through the CLI config and the module."""

from __future__ import annotations

import math

import pytest
import torch

from bench.gpu import throughput
from src.config.schemas import net_config, with_defaults
from src.models.segmentation import SegmentationModule
from src.train import train

NET = net_config("unet", depth=2, base_width=8)
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


@pytest.mark.slow
def test_bf16_mixed_and_channels_last_train_from_the_cli_config(make_cfg) -> None:
    cfg = make_cfg("train", "reduction=none", "trainer.max_epochs=2", "trainer.precision=bf16-mixed", "model.channels_last=true", "test=false")
    metrics = train(cfg)
    assert math.isfinite(metrics["val/loss"]) and metrics["val/acc"] > 0.5


@pytest.mark.parametrize("option", ["channels_last", pytest.param("compile_net", marks=pytest.mark.slow)])
def test_a_numeric_option_keeps_the_logits_and_the_plain_checkpoint_keys(option: str) -> None:
    torch.manual_seed(0)
    eager = with_defaults(SegmentationModule, net=NET, task="binary", in_channels=1, out_channels=1, optimizer=ADAM)
    variant = with_defaults(SegmentationModule, net=NET, task="binary", in_channels=1, out_channels=1, optimizer=ADAM, **{option: True})
    variant.load_state_dict(eager.state_dict())
    images = torch.rand(2, 1, 16, 16)
    assert torch.allclose(eager(images), variant(images), atol=1e-4)
    assert list(variant.state_dict()) == list(eager.state_dict())


@pytest.mark.slow
def test_gpu_bench_section_runs_on_the_cpu() -> None:
    result = throughput("cpu", size=32, batch=2, steps=1, settings=("fp32", "bf16", "bf16_channels_last"))
    assert set(result) == {"fp32", "bf16", "bf16_channels_last"}
    assert all(r["images_per_s"] > 0 and r["fraction_of_peak"] is None for r in result.values())
