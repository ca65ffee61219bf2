"""U-Net training throughput per numeric setting: fp32, bf16 autocast, channels_last and
``torch.compile``, with the achieved FLOP/s. Runs on a GPU when there is one (``make bench``);
the same code runs on the CPU at a small size in the tests."""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from src.config.schemas import net_config, with_defaults
from src.models.segmentation import SegmentationModule

# dense peak FLOP/s by device name (vendor data sheets), for the achieved fraction
PEAK_FLOPS = {"H100": {"fp32": 67e12, "bf16": 989e12}, "H200": {"fp32": 67e12, "bf16": 989e12}, "A100": {"fp32": 19.5e12, "bf16": 312e12}}
SETTINGS = {
    "fp32": {"bf16": False, "channels_last": False, "compile": False},
    "bf16": {"bf16": True, "channels_last": False, "compile": False},
    "bf16_channels_last": {"bf16": True, "channels_last": True, "compile": False},
    "bf16_channels_last_compile": {"bf16": True, "channels_last": True, "compile": True},
}


def _module(channels_last: bool, compile_net: bool, device: torch.device) -> SegmentationModule:
    net = net_config("unet", depth=4, base_width=32)
    optimizer = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}
    module = with_defaults(
        SegmentationModule, net=net, task="binary", in_channels=1, out_channels=1, optimizer=optimizer, channels_last=channels_last, compile_net=compile_net
    )
    return module.to(device)


def train_step_flops(size: int, batch: int) -> int:
    """FLOPs of one forward + backward of the membrane U-Net (depth 4, width 32)."""
    module = _module(False, False, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        module(torch.rand(batch, 1, size, size)).sum().backward()
    return counter.get_total_flops()


def _training_step(module: SegmentationModule, optimizer: torch.optim.Optimizer, images: torch.Tensor, masks: torch.Tensor, bf16: bool):
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = module.loss_fn(module(images), masks, None)
        loss.backward()
        optimizer.step()

    return step


def throughput(device: str, size: int, batch: int, steps: int, settings: tuple[str, ...] = tuple(SETTINGS)) -> dict[str, dict]:
    """Images per second of training steps (forward, BCE, backward, Adam) per setting."""
    device_ = torch.device(device)
    flops = train_step_flops(size, batch)
    name = torch.cuda.get_device_name(device_) if device_.type == "cuda" else "cpu"
    peaks = next((p for key, p in PEAK_FLOPS.items() if key in name), None)
    results = {}
    for setting in settings:
        options = SETTINGS[setting]
        module = _module(options["channels_last"], options["compile"], device_)
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
        images = torch.rand(batch, 1, size, size, device=device_)
        masks = (torch.rand(batch, 1, size, size, device=device_) > 0.5).float()

        step = _training_step(module, optimizer, images, masks, options["bf16"])

        for _ in range(3):  # warm-up (and compilation)
            step()
        if device_.type == "cuda":
            torch.cuda.synchronize(device_)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device_.type == "cuda":
            torch.cuda.synchronize(device_)
        seconds = (time.perf_counter() - start) / steps
        achieved = flops / seconds
        peak = None if peaks is None else peaks["bf16" if options["bf16"] else "fp32"]
        results[setting] = {"images_per_s": batch / seconds, "tflops": achieved / 1e12, "fraction_of_peak": None if peak is None else achieved / peak}
    return results
