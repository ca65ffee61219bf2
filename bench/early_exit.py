"""Early exit in wall-clock time: seconds per sample of the chosen operating point against the
full network at batch 1 and 64, beside the fraction of the FLOPs it runs, on two inputs: eliret
shapes (32 px gray, where the first stage's memory traffic outweighs its FLOPs) and the
``pet_cls`` net on 128 px RGB (synthetic Pet, where the convolutions dominate). Both memory
layouts are timed at batch 64 (``model.channels_last``), and the time at batch 64 is taken
apart: what the stage shares predict, the network on the real sub-batches, and the decisions."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.framework import train_config
from bench.timing import interleaved, median
from src.early_exit.measurements import choose_points, measure_exits
from src.early_exit.policies import POLICIES, early_exit_predict
from src.jobs.builders import build_datamodule, build_model
from src.models.early_exit import EarlyExitClassifier

# (overrides, epochs): eliret_cls as its preset; pet_cls on the synthetic Pet (cats are
# ellipses, dogs boxes), 128 px RGB
CASES = {
    "eliret_cls": (["experiment=eliret_early_exit"], None),
    "pet_cls_128": (["data=pet_cls", "model=early_exit_cnn", "data.image_size=128"], 4),
}


def _trained(overrides: list[str], epochs: int) -> tuple[EarlyExitClassifier, L.LightningDataModule]:
    cfg = train_config([*overrides, f"trainer.max_epochs={epochs}"])
    datamodule = build_datamodule(cfg)
    module = build_model(cfg, datamodule)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=datamodule)
    return module, datamodule


def _with_layout(module: EarlyExitClassifier, channels_last: bool) -> EarlyExitClassifier:
    """The same trained weights in a module built with ``channels_last``."""
    copy = type(module)(**{**module.hparams, "channels_last": channels_last})
    copy.load_state_dict(module.state_dict())
    return copy.eval()


def stage_profile(module: EarlyExitClassifier, images: torch.Tensor, batch_size: int, repetitions: int) -> tuple[list[float], list[float]]:
    """Each stage's share (its exit head included) of the full network's time on ``images`` in
    batches of ``batch_size``, and of its FLOPs: stages whose cost is not in multiply-adds
    (pooling, batch norm, memory traffic on the largest maps) take more time than FLOPs."""
    net = module.net
    head_of = {s: k for k, s in enumerate(net.exit_stages)}

    def run_stage(i: int, x: torch.Tensor) -> torch.Tensor:
        x = net.stages[i](x)
        if i in head_of:
            net.heads[head_of[i]](x)
        return x

    inputs: list[list[torch.Tensor]] = [[] for _ in net.stages]
    flops = [0] * len(net.stages)
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = module.net_input(images[start : start + batch_size])
            for i in range(len(net.stages)):
                inputs[i].append(x)
                with FlopCounterMode(display=False) as counter:
                    x = run_stage(i, x)
                flops[i] += counter.get_total_flops()
        stages = {str(i): (lambda i=i: [run_stage(i, x) for x in inputs[i]]) for i in range(len(net.stages))}
        times = interleaved(stages, repetitions * 3)
    seconds = [median(times[str(i)]) for i in range(len(net.stages))]
    return [t / sum(seconds) for t in seconds], [f / sum(flops) for f in flops]


def _network_on_sub_batches(module: EarlyExitClassifier, images: torch.Tensor, taken: torch.Tensor) -> None:
    """The stages and heads early exit runs, on the same shrinking batches, without deciding:
    who stays is read from ``taken`` (the exits the policy chose)."""
    net = module.net
    x, first = module.net_input(images), 0
    for k, exit_stage in enumerate(net.exit_stages):
        for i in range(first, exit_stage + 1):
            x = net.stages[i](x)
        first = exit_stage + 1
        net.heads[k](x)
        stay = (taken > k).nonzero().squeeze(1)
        if not len(stay):
            return
        x, taken = x[stay], taken[stay]


def _batched(fn: Callable[[torch.Tensor, slice], object], count: int, batch_size: int) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            for start in range(0, count, batch_size):
                fn(slice(start, start + batch_size))

    return run


def measure_case(overrides: list[str], repetitions: int, epochs: int, batch1_samples: int = 128) -> dict[str, object]:
    torch.manual_seed(0)
    trained, datamodule = _trained(overrides, epochs)
    options = train_config(overrides).early_exit  # the training job's own settings (saliency method, accuracy budget)
    measured = measure_exits(trained, datamodule.val_dataloader(), datamodule.test_dataloader(), options.saliency_method)
    chosen = {name: point for name, point in choose_points(measured, options.max_accuracy_drop).items() if not POLICIES[name].oracle}
    policy = POLICIES[max(chosen, key=lambda name: chosen[name].test_flops_saving)]
    threshold = chosen[policy.name].threshold_of(policy)
    temperatures = measured.test.temperatures.tolist()
    images = torch.cat([batch["image"] for batch in datamodule.test_dataloader()])
    layouts = {"contiguous": _with_layout(trained, False), "channels_last": _with_layout(trained, True)}
    with torch.no_grad():
        _, taken = early_exit_predict(layouts["contiguous"], images, policy, threshold, options.saliency_method, temperatures)

    arms: dict[str, Callable[[], None]] = {}
    for layout, module in layouts.items():
        for batch_size, count in ((64, len(images)), (1, min(batch1_samples, len(images)))):
            if batch_size == 1 and layout == "channels_last":
                continue
            key = f"{layout}/{batch_size}"

            def early(part: slice, module: EarlyExitClassifier = module) -> None:
                early_exit_predict(module, images[part], policy, threshold, options.saliency_method, temperatures)

            arms[f"early/{key}"] = _batched(early, count, batch_size)
            arms[f"full/{key}"] = _batched(lambda part, module=module: module(images[part]), count, batch_size)
            if batch_size == 64:
                arms[f"sub_batches/{key}"] = _batched(lambda part, module=module: _network_on_sub_batches(module, images[part], taken[part]), count, 64)
    for arm in arms.values():  # warm-up: first calls allocate and pick kernels
        arm()
    times = interleaved(arms, repetitions)
    reach = [float((taken >= k).float().mean()) for k in range(trained.net.num_exits)]
    flops_fraction = 1.0 - chosen[policy.name].test_flops_saving
    result: dict[str, object] = {
        "policy": policy.name,
        "threshold": threshold,
        "test_accuracy": chosen[policy.name].test_accuracy,
        "final_exit_test_accuracy": measured.accuracy("test", trained.net.num_exits - 1),
        "test_images": len(images),
        "image_shape": list(images.shape[1:]),
        "epochs": epochs,
        "flops_fraction": flops_fraction,
        "fraction_reaching_stage": reach,
    }
    for key in sorted({name.split("/", 1)[1] for name in arms}):
        layout, batch_size = key.split("/")
        count = len(images) if batch_size == "64" else min(batch1_samples, len(images))
        early_ms, full_ms = (1e3 * median(times[f"{arm}/{key}"]) / count for arm in ("early", "full"))
        entry = {
            "early_ms_per_sample": early_ms,
            "full_ms_per_sample": full_ms,
            "time_fraction": early_ms / full_ms,
            "time_over_flops_fraction": early_ms / full_ms / flops_fraction,
        }
        if batch_size == "64":
            time_share, flops_share = stage_profile(layouts[layout], images, 64, repetitions)
            predicted = sum(r * t for r, t in zip(reach, time_share, strict=True))  # one exit per stage
            sub_batches = 1e3 * median(times[f"sub_batches/{key}"]) / count / full_ms
            entry |= {
                "stage_time_share": time_share,
                "stage_flops_share": flops_share,
                # the parts of the time fraction: what the whole-batch stage times predict for
                # these exits; what running them on the smaller batches adds (fixed per-call
                # costs, the copies that drop the samples that left); the rest: the decisions
                "predicted_time_fraction": predicted,
                "sub_batch_cost": sub_batches - predicted,
                "decision_cost": early_ms / full_ms - sub_batches,
            }
        result[key] = entry
    return result


def measure(data_dir: str, pet_dir: str, repetitions: int, epochs: int = 3) -> dict[str, dict]:
    """Each case of ``CASES``, trained for its epochs (eliret: ``epochs``)."""
    data = {"eliret_cls": [f"paths.data_dir={data_dir}"], "pet_cls_128": [f"paths.data_dir={data_dir}", f"data.data_dir={pet_dir}"]}
    return {name: measure_case([*data[name], *overrides], repetitions, case_epochs or epochs) for name, (overrides, case_epochs) in CASES.items()}
