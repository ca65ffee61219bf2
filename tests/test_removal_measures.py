"""The model-free measures of a reduction round: keep-mask IoU with the oracle and the cue's share."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.shortcut_generator import ShortcutSpec, draw_sample
from src.pilot import pilot
from src.reduction.removal_measures import cue_share, keep_iou, object_recall
from tests.helpers.cli import run_cli


def test_keep_iou_is_a_hand_computed_intersection_over_union() -> None:
    a = torch.tensor([[[1, 1, 0], [0, 0, 0]], [[1, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]], dtype=torch.bool)
    b = torch.tensor([[[1, 0, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]], dtype=torch.bool)
    # image 0: 1 shared of 3 kept by either; image 1: identical; image 2: both keep nothing
    assert torch.allclose(keep_iou(a, b), torch.tensor([1 / 3, 1.0, 1.0]))


def test_object_recall_is_the_hand_counted_share_of_object_pixels_kept() -> None:
    targets = torch.tensor([[[0, 1, 1], [0, 2, 0]], [[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
    masks = torch.tensor([[[1, 1, 0], [0, 1, 1]], [[0, 0, 1], [1, 1, 1]], [[1, 1, 1], [1, 1, 1]]], dtype=torch.bool)
    recall = object_recall(masks, targets)
    # image 0: 2 of its 3 object pixels kept; image 1: none of 2, however much background it keeps
    assert torch.allclose(recall[:2], torch.tensor([2 / 3, 0.0])) and math.isnan(recall[2])  # no object: no recall
    # class 1 as the background: image 0's objects are its 0s and its 2, 3 of the 4 kept
    assert torch.allclose(object_recall(masks, targets, background_class=1)[:2], torch.tensor([3 / 4, 4 / 4]))


def test_cue_share_is_the_cue_amplitude_left_in_the_reduced_image() -> None:
    cue_free = torch.tensor([[[0.5, 0.5, 0.5, 0.5]], [[0.2, 0.4, 0.6, 0.8]], [[0.3, 0.3, 0.3, 0.3]]])
    component = torch.tensor([[[0.0, 0.1, -0.1, 0.1]], [[0.05, -0.05, 0.05, -0.05]], [[0.0, 0.0, 0.0, 0.0]]])
    untouched = cue_free + component
    assert torch.allclose(cue_share(untouched, cue_free, component)[:2], torch.ones(2))
    assert math.isnan(cue_share(untouched, cue_free, component)[2])  # no cue, no share
    # a fill that kept half the cue on image 0 and rebuilt image 1 without it (plus noise
    # orthogonal to the cue): by hand, <r - f, c> / <c, c>
    reduced = cue_free + torch.stack([0.5 * component[0], torch.tensor([[0.01, 0.01, 0.01, 0.01]]), component[2]])
    share = cue_share(reduced, cue_free, component)
    assert torch.allclose(share[:2], torch.tensor([0.5, 0.0]), atol=1e-6)
    # a fill that reversed the cue scores -1
    assert torch.allclose(cue_share(cue_free - component, cue_free, component)[:2], -torch.ones(2))


def test_the_pilot_measures_a_model_free_round_through_its_cli(make_cfg, tmp_path: Path) -> None:
    common = ["data=shortcut", f"data.data_dir={tmp_path / 'set'}", "data.n_train=24", "data.n_val=4", "data.n_test=4", "data.cue=gradient", "data.cue_guard=4"]
    common += ["reduction.fill=impute", "reduction.oracle_margin=0"]
    result = run_cli("src.pilot", *common, "reduction.percentile=30", f"hydra.run.dir={tmp_path / '30'}", project_root=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "30" / "pilot.csv") as handle:
        rows = {30: {row["method"]: row for row in csv.DictReader(handle)}}
    # the same set, everything kept: in-process (the CLI's path is the one above)
    rows[100] = {str(row["method"]): {k: str(v) for k, v in row.items()} for row in pilot(make_cfg("train", *common, "reduction.percentile=100"))}
    assert set(rows[30]) == {"random", "random_smooth", "oracle", "cue_oracle"}  # the cue is known: its oracle too
    # keeping everything leaves what the stored images carry (the cue less its clipping at 0 and 1)
    samples = [draw_sample(ShortcutSpec(n_train=24, n_val=4, n_test=4, cue="gradient", cue_guard=4), "train", i) for i in range(24)]
    stored = cue_share(
        *(
            torch.from_numpy(np.stack(parts)).double()
            for parts in ([s.image / 255 for s in samples], [s.cue_free / 255 for s in samples], [s.cue_component for s in samples])
        )
    )
    assert 0.95 < stored.nanmean().item() <= 1
    assert all(float(row["cue_share"]) == pytest.approx(stored.nanmean().item(), abs=1e-5) and float(row["oracle_keep_iou"]) == 1 for row in rows[100].values())
    # at 30%: the same kept fraction for each; the oracle keeps the objects and the band, no cue
    kept = {float(row["kept_fraction"]) for row in rows[30].values()}
    assert len(kept) == 1 and abs(kept.pop() - 0.3) < 0.01
    assert float(rows[30]["oracle"]["oracle_keep_iou"]) == 1 and float(rows[30]["random"]["oracle_keep_iou"]) < 0.5
    assert float(rows[30]["oracle"]["object_recall"]) == 1 and float(rows[30]["random"]["object_recall"]) < 0.5
    assert abs(float(rows[30]["oracle"]["cue_share"])) < 0.1 < 0.8 < float(rows[30]["random"]["cue_share"])
    assert abs(float(rows[30]["cue_oracle"]["cue_share"])) < 0.1 and float(rows[30]["cue_oracle"]["object_recall"]) == 1
    assert "pilot criterion: random leaves >= 80% of the cue: holds" in result.stdout
