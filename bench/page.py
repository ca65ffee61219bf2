"""latest.md: the bench's JSON as markdown tables."""

from __future__ import annotations

from bench.epoch_parts import PARTS


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def markdown(results: dict) -> str:
    m = results["machine"]
    out = [
        f"# Benchmark ({results['mode']}, {results['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), {m['memory_gib']} GiB, "
        f"GPU: {m['gpu'] or 'none'}; Python {m['python']}, torch {m['torch']}; load average at start {m['load_average_at_start']:.2f}. "
        f"Total {results['total_seconds']} s.",
        "",
        "## Framework overhead (seconds per epoch, median of interleaved repetitions)",
        "",
    ]
    rows = []
    for name, r in results["overhead"].items():
        s = r["seconds_per_epoch"]
        rows.append([name, s["plain"], s["framework"], r["overhead_ratio"], ", ".join(f"{x:.2f}" for x in r["overhead_ratios"]), r["epochs"]])
    out += _table(["data", "plain loop s/epoch", "src.train s/epoch", "overhead_ratio", "per repetition", "epochs per run"], rows)
    for name, r in results["overhead"].items():
        plain, framework = r["parts"]["plain"], r["parts"]["framework"]
        out += [
            f"Where an epoch goes ({name}; mean seconds per epoch over the same runs; parts timed inside the runs, "
            "`bench/epoch_parts.py`; the loop is what no part claims):",
            "",
        ]
        rows = [[part, plain[part], framework[part], framework[part] - plain[part], whose] for part, whose in PARTS.items()]
        rows.append(["whole epoch", plain["epoch"], framework["epoch"], framework["epoch"] - plain["epoch"], ""])
        out += _table(["part", "plain loop", "src.train", "difference", "whose (in src.train)"], rows)
        out += [
            f"src.train's parts outside the model work add {r['outside_model_work_ratio'] - 1:.1%} to the plain loop's epoch "
            f"(the ratio with the model work, which both arms share, taken as equal: {r['outside_model_work_ratio']:.3f}).",
            "",
        ]
    if "startup" in results:
        s = results["startup"]
        out += ["## Start-up", ""]
        out += _table(
            ["", "seconds"],
            [
                ["`python -m src.train`, one eliret epoch, no test", s["framework_one_epoch_s"]],
                ["plain loop process, one epoch", s["plain_one_epoch_s"]],
                ["`import src.train`", s["import_src_train_s"]],
            ],
        )
    if "threads" in results:
        t = results["threads"]
        plan = t["epochs"]
        out += [
            f"## Thread default (`torch_threads=null`) against 1 thread and every core ({plan['epochs']} eliret epochs, "
            f"fit seconds, median of {plan['repetitions']} interleaved runs, a fresh process each; busy: another process spins on one core)",
            "",
        ]
        states = [state for state in t if state != "epochs"]
        arms = list(t[states[0]]["fit_seconds"])
        rows = [
            [state, *(t[state]["fit_seconds"][arm] for arm in arms), t[state]["default_over_best"], "yes" if t[state]["within_target"] else "NO"]
            for state in states
        ]
        out += _table(["machine", *arms, "default / best", "default within 1.3x"], rows)
    if "cli" in results:
        out += ["## The CLI's answers without training (`python -m src.train ...`, median seconds; torch is not imported)", ""]
        out += _table(["command", "seconds"], [[name, seconds] for name, seconds in results["cli"].items()])
    r = results["relevance"]
    out += [f"## Relevance pass ({r['train_images']} images of {r['image_size']} px; one training epoch: {r['training_epoch_s']:.3f} s)", ""]
    out += _table(["method", "seconds", "x one training epoch"], [[k, v["seconds"], v["vs_training_epoch"]] for k, v in r["methods"].items()])
    out += _table(["images (prediction)", "seconds", "ms per image"], [[n, v["seconds"], v["ms_per_image"]] for n, v in r["growth_prediction"].items()])
    out += [
        f"ms per image at the largest size over the smallest: {r['growth_per_image_ratio']:.2f} (1.0 = linear). Masks: {r['mask_bytes_per_image']:.0f} bytes per image packed ({r['mask_bytes_per_image_unpacked']:.0f} as bool).",
        "",
    ]
    if "fills" in results:
        f = results["fills"]
        out += [f"## Fills of removed pixels ({f['images']} uint8 RGB images of {f['image_size']} px, median)", ""]
        out += _table(
            ["fill @ masks", "ms per image", f"s for a Pet training set ({f['pet_train_images']} images)"],
            [[k, v["ms_per_image"], v["pet_train_set_s"]] for k, v in f["fills"].items()],
        )
    out += ["## Data: loader against model (training images per second)", ""]
    rows = [
        [
            name,
            d["image_size"],
            d["augmentation"],
            d["loader_0_workers_images_per_s"],
            d["loader_2_workers_images_per_s"],
            d["model_images_per_s"],
            d["default_workers"],
            d["loader_over_model_at_default_workers"],
        ]
        for name, d in results["data"].items()
    ]
    out += _table(
        ["data", "px", "augmentation", "loader, 0 workers", "loader, 2 workers", "model (train step)", "default workers", "loader / model at default"], rows
    )
    if "early_exit" in results:
        out += early_exit_section(results["early_exit"])
    if "memory" in results:
        out += ["## Memory (peak RSS of a process of its own)", ""]
        rows = [[name, v["peak_rss_mib"], v.get("train_images_mib", ""), v.get("storage", "")] for name, v in results["memory"].items()]
        out += _table(["job", "peak RSS MiB", "training images MiB", "stored as"], rows)
    out += ["## GPU (U-Net depth 4 width 32, training steps)", ""]
    if not results.get("gpu"):
        out += ["Not measured: no GPU on this machine.", ""]
    else:
        rows = [
            [size, setting, v["images_per_s"], v["tflops"], v["fraction_of_peak"] or ""] for size, by in results["gpu"].items() for setting, v in by.items()
        ]
        out += _table(["px", "setting", "images/s", "achieved TFLOP/s", "fraction of peak"], rows)
    return "\n".join(out)


def early_exit_section(cases: dict[str, dict]) -> list[str]:
    out = [
        "## Early exit: time against FLOPs",
        "",
        "Seconds per sample of the chosen policy's early exit against the full network on the test images, "
        "median of interleaved repetitions; the time fraction over the FLOPs fraction is 1.0 when time tracks FLOPs.",
        "",
    ]
    for name, e in cases.items():
        shape = "x".join(str(d) for d in e["image_shape"])
        out += [
            f"### {name} ({e['test_images']} test images of {shape}, {e['epochs']} epochs; policy {e['policy']}, "
            f"test accuracy {e['test_accuracy']:.3f}, final exit {e['final_exit_test_accuracy']:.3f}, FLOPs fraction {e['flops_fraction']:.3f})",
            "",
        ]
        keys = [k for k in ("contiguous/1", "contiguous/64", "channels_last/64") if k in e]
        rows = [
            [k.replace("/", ", batch "), e[k]["early_ms_per_sample"], e[k]["full_ms_per_sample"], e[k]["time_fraction"], e[k]["time_over_flops_fraction"]]
            for k in keys
        ]
        out += _table(["layout, batch", "early exit ms/sample", "full network ms/sample", "time fraction", "time fraction / FLOPs fraction"], rows)
        batch64 = [k for k in keys if k.endswith("/64")]
        rows = [
            [i, reach, *(e[k]["stage_time_share"][i] for k in batch64), e[batch64[0]]["stage_flops_share"][i]]
            for i, reach in enumerate(e["fraction_reaching_stage"])
        ]
        out += _table(["stage", "samples reaching it", *(f"share of time ({k.split('/')[0]})" for k in batch64), "share of FLOPs"], rows)
        rows = [
            [
                k.split("/")[0],
                e[k]["predicted_time_fraction"],
                e[k]["sub_batch_cost"],
                e[k]["decision_cost"],
                e[k]["time_fraction"],
                e[k]["predicted_time_fraction"] / e["flops_fraction"],
            ]
            for k in batch64
        ]
        out += ["Where the batch-64 time fraction comes from (fractions of the full network's time):", ""]
        out += _table(
            [
                "layout",
                "the stages' whole-batch times predict",
                "+ the same stages on the smaller batches",
                "+ the decisions",
                "= measured",
                "floor: predicted / FLOPs fraction",
            ],
            rows,
        )
    return out
