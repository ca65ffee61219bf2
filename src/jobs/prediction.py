"""The prediction job of ``python -m src.predict`` (src/predict.py): every input image segmented by
a checkpoint's model, written with its metrics where a label lies beside it."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig
from rich.progress import track
from rich.table import Table

from src.config.errors import UserInputError
from src.jobs.builders import set_torch_threads
from src.models.segmentation import SegmentationModule
from src.prediction import outputs
from src.prediction.inputs import RefusedImage, image_paths, label_path, read_folder_label, read_image, read_label
from src.prediction.tiling import allow_any_size, predict_probabilities
from src.storage.checkpoints import load_module, read_checkpoint
from src.storage.results import console, write_csv_atomic

log = logging.getLogger(__name__)


def predict(cfg: DictConfig) -> list[dict[str, object]]:
    """Predict every input image; returns the rows of predictions.csv."""
    if not 0.0 <= cfg.threshold <= 1.0:
        raise UserInputError(f"threshold={cfg.threshold} must be in [0, 1].")
    if cfg.border is not None and cfg.border < 0:
        raise UserInputError(f"border={cfg.border} must be >= 0 mirrored pixels, or null (as the model's own test).")
    if cfg.roi_size is not None and cfg.roi_size < 8:
        raise UserInputError(f"roi_size={cfg.roi_size} is too small; use null (whole image) or >= 8 pixels.")
    if not 0.0 <= cfg.overlap < 1.0 or cfg.input_scale <= 0 or cfg.label_foreground not in ("bright", "dark"):
        raise UserInputError("overlap must be in [0, 1), input_scale > 0 and label_foreground bright or dark.")
    set_torch_threads(cfg)
    module = load_module(cfg.ckpt_path)
    # a folder data set's mask encoding, so its labels are read as training read them
    data = read_checkpoint(cfg.ckpt_path).get("datamodule_hyper_parameters") or {}
    folder_data = data if "mask_values" in data else None
    labels_dir = None if cfg.get("labels") is None else Path(cfg.labels)
    if labels_dir is not None and not labels_dir.is_dir():
        raise UserInputError(f"labels={cfg.labels} is not a folder; point it at the folder of label files named like the images (e.g. <data>/masks).")
    if not isinstance(module, SegmentationModule):
        raise UserInputError(f"{cfg.ckpt_path} holds a {type(module).__name__}; src.predict segments images with a segmentation checkpoint.")
    module.eval()
    allow_any_size(module)
    if cfg.tta is not None:
        module.hparams.tta = bool(cfg.tta)
    paths = image_paths(cfg.input)
    labels = {path: label_path(path, labels_dir) for path in paths}  # a label that is its image is refused before any prediction
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    channels, classes, task = module.hparams.in_channels, max(2, module.hparams.out_channels), module.hparams.task

    rows: list[dict[str, object]] = []
    refused: list[tuple[Path, str]] = []
    names: set[str] = set()
    for path in track(paths, description="predicting", console=console()):
        try:
            image = read_image(path, channels, cfg.max_pixels)
        except RefusedImage as reason:
            log.warning("skipping %s: %s", path, reason)
            refused.append((path, str(reason)))
            continue
        probabilities = predict_probabilities(module, image.pixels, cfg.roi_size, cfg.overlap, cfg.batch_size, cfg.border, cfg.input_scale)
        probability = outputs.foreground(probabilities, cfg.background_class)
        label_map = outputs.labels(probabilities, cfg.threshold)
        name = _unique(path.stem, names)
        outputs.write_png(out / f"{name}_prob.png", outputs.probability_png(probability))
        outputs.write_png(out / f"{name}_mask.png", outputs.mask_png(label_map, classes))
        if cfg.overlay:
            outputs.overlay_figure(image.pixels, probability, label_map, out / f"{name}_overlay.png", title=path.name)
        row: dict[str, object] = {
            "image": str(path),
            "output": name,
            "height": label_map.shape[0],
            "width": label_map.shape[1],
            "foreground_fraction": round(float((label_map != cfg.background_class).float().mean()), 6),
            "converted": image.note,
        }
        label = labels[path]
        if label is not None:
            try:
                target = read_folder_label(label, folder_data) if folder_data else read_label(label, task, cfg.label_foreground)
                ignore = folder_data["ignore_index"] if folder_data else None
                scores = outputs.label_metrics(label_map, target, classes, ignore)
                row.update({"label": str(label), **{k: round(v, 6) for k, v in scores.items()}})
            except (OSError, ValueError) as err:
                row.update({"label": str(label), "label_error": str(err)})
        rows.append(row)
    write_csv_atomic(out / "predictions.csv", rows)
    _print_summary(rows, refused, out)
    if not rows:
        raise UserInputError(f"no image could be predicted ({len(refused)} refused); see the reasons above.")
    return rows


def _unique(stem: str, names: set[str]) -> str:
    name, number = stem, 1
    while name in names:  # the same file name in two folders of a glob
        number += 1
        name = f"{stem}_{number}"
    names.add(name)
    return name


def _print_summary(rows: list[dict[str, object]], refused: list[tuple[Path, str]], out: Path) -> None:
    console().print(f"{len(rows)} images written to {out}, {len(refused)} refused")
    if refused:
        table = Table(title="refused inputs")
        table.add_column("file")
        table.add_column("why")
        for path, reason in refused:
            table.add_row(str(path), reason)
        console().print(table)
    scored = [r for r in rows if "iou" in r]
    if scored:
        mean = {k: sum(float(r[k]) for r in scored) / len(scored) for k in ("acc", "iou", "dice")}
        console().print(f"against {len(scored)} labels: mean pixel accuracy {mean['acc']:.4f}, IoU {mean['iou']:.4f}, Dice {mean['dice']:.4f}")
