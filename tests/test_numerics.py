"""The GPU numeric settings run on the CPU too: bf16 autocast through the trainer's precision,
the channels_last layout and torch.compile, through the CLI config and the module."""

from __future__ import annotations

import math

import pytest
import torch

from bench.gpu import throughput
from src.models.segmentation import SegmentationModule
from src.train import train

NET = {"_target_": "src.models.unet.UNet", "depth": 2, "base_width": 8}
ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


def test_bf16_mixed_and_channels_last_train_from_the_cli_config(make_cfg) -> None:
    cfg = make_cfg("train", "reduction=none", "trainer.max_epochs=2", "trainer.precision=bf16-mixed", "model.channels_last=true", "test=false")
    metrics = train(cfg)
    assert math.isfinite(metrics["val/loss"]) and metrics["val/acc"] > 0.5


def test_channels_last_gives_the_same_logits_and_plain_checkpoint_keys() -> None:
    torch.manual_seed(0)
    plain = SegmentationModule(net=NET, task="binary", in_channels=1, out_channels=1, optimizer=ADAM)
    nhwc = SegmentationModule(net=NET, task="binary", in_channels=1, out_channels=1, optimizer=ADAM, channels_last=True)
    nhwc.load_state_dict(plain.state_dict())
    images = torch.rand(2, 1, 16, 16)
    assert torch.allclose(plain(images), nhwc(images), atol=1e-5)
    assert list(nhwc.state_dict()) == list(plain.state_dict())


@pytest.mark.slow
def test_compiled_net_matches_the_eager_net_and_saves_plain_keys() -> None:
    torch.manual_seed(0)
    eager = SegmentationModule(net=NET, task="binary", in_channels=1, out_channels=1, optimizer=ADAM)
    compiled = SegmentationModule(net=NET, task="binary", in_channels=1, out_channels=1, optimizer=ADAM, compile_net=True)
    compiled.load_state_dict(eager.state_dict())
    images = torch.rand(2, 1, 16, 16)
    assert torch.allclose(eager(images), compiled(images), atol=1e-4)
    assert list(compiled.state_dict()) == list(eager.state_dict())


def test_gpu_bench_section_runs_on_the_cpu() -> None:
    result = throughput("cpu", size=32, batch=2, steps=1, settings=("fp32", "bf16", "bf16_channels_last"))
    assert set(result) == {"fp32", "bf16", "bf16_channels_last"}
    assert all(r["images_per_s"] > 0 and r["fraction_of_peak"] is None for r in result.values())
