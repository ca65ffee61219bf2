"""docs/results.md is exactly what ``make results`` renders from the runs it recorded in
results/latest.json: no figure on the page was typed by hand or drifted from its run."""

from __future__ import annotations

import json

import pytest

from results.__main__ import LATEST, PAGE, all_cell_accuracy
from results.page import render
from results.runs import MEMBRANE_DATA, RUNS
from tests.helpers.cli import ROOT


@pytest.mark.skipif(not (MEMBRANE_DATA / "train" / "image").is_dir(), reason=f"ISBI data not at {MEMBRANE_DATA}")
def test_the_committed_results_page_is_what_the_recorded_runs_give() -> None:
    recorded = json.loads(LATEST.read_text())
    assert {run.name for run in RUNS} <= set(recorded["runs"])  # every table's runs were recorded
    assert PAGE.read_text() == render(recorded["meta"], recorded["runs"], all_cell_accuracy()) + "\n"
    assert PAGE.is_relative_to(ROOT / "docs")
