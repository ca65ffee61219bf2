"""Which progress display a run gets, while it trains and between epochs."""

import logging
import sys

import pytest
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

from src.callbacks.progress import LinePerEpochProgressBar, WorkProgress, progress_bar
from src.config.errors import UserInputError


def test_auto_picks_the_bar_in_a_terminal_and_lines_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert isinstance(progress_bar("auto"), TQDMProgressBar)
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert isinstance(progress_bar("auto"), LinePerEpochProgressBar)


def test_a_mode_forces_a_display_and_a_bad_one_is_refused() -> None:
    assert isinstance(progress_bar("bar"), TQDMProgressBar)
    assert isinstance(progress_bar("lines"), LinePerEpochProgressBar)
    assert isinstance(progress_bar("rich"), RichProgressBar)
    with pytest.raises(UserInputError, match="callbacks.progress_bar.mode='fancy' must be one of auto, bar, lines, rich"):
        progress_bar("fancy")


def test_work_between_epochs_logs_a_line_per_tenth_when_redirected(caplog) -> None:
    caplog.set_level(logging.INFO)
    progress = WorkProgress("round 1: impute fill", 1000)
    for _ in range(40):
        progress.advance(25)  # 2.5% a step: a line at each tenth, none in between
    progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(": ")[2].split(" ")[0] for line in lines] == [f"{10 * k}%" for k in range(1, 11)]
    assert lines[-1].startswith("round 1: impute fill: 100% (1000 of 1000 images, ")


def test_work_between_epochs_shows_a_bar_in_a_terminal_and_nothing_on_other_ranks(caplog, monkeypatch) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    bar = WorkProgress("relevance", 10)
    assert bar._bar is not None
    bar.advance(10)
    bar.close()
    silent = WorkProgress("relevance", 10, shown=False)
    assert silent._bar is None
    silent.advance(10)
    assert not caplog.records
