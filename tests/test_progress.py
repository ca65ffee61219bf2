"""Which progress display a run gets."""

import pytest
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

from src.callbacks.progress import LinePerEpochProgressBar, progress_bar
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
