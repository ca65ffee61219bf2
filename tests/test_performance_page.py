"""docs/performance.md shows the committed bench run: its tables are bench/measured/latest.md
itself (included by the docs build), and the figures its prose and the README quote are that
run's."""

from __future__ import annotations

import json

from tests.helpers.cli import ROOT

PAGE = ROOT / "docs" / "performance.md"
LATEST = ROOT / "bench" / "measured" / "latest.json"


def test_the_page_includes_the_latest_bench_run() -> None:
    assert '--8<-- "bench/measured/latest.md"' in PAGE.read_text()
    assert (ROOT / "bench" / "measured" / "latest.md").is_file()


def test_the_quoted_figures_are_the_latest_runs() -> None:
    page, results = PAGE.read_text(), json.loads(LATEST.read_text())
    assert results["date"][:10] in page
    for name, overhead in results["overhead"].items():
        assert f"{name}: **{overhead['overhead_ratio']:.2f}**" in page, name
    for name, case in results["early_exit"].items():
        for layout in ("contiguous", "channels_last"):
            assert f"{name}, {layout}: **{case[f'{layout}/64']['time_over_flops_fraction']:.2f}**" in page, (name, layout)


def test_the_readme_quotes_the_latest_run() -> None:
    text, results = " ".join((ROOT / "README.md").read_text().split()), json.loads(LATEST.read_text())
    assert f"`make bench`, {results['date'][:10]}" in text
    overhead = results["overhead"]
    assert f"{overhead['eliret']['overhead_ratio']:.2f} times a plain PyTorch loop's on eliret" in text
    assert f"{overhead['membrane']['overhead_ratio']:.2f} times on membrane" in text
    assert f"{results['early_exit']['eliret_cls']['contiguous/64']['time_over_flops_fraction']:.2f} times its FLOPs fraction" in text
    assert f"{results['early_exit']['pet_cls_128']['contiguous/64']['time_over_flops_fraction']:.2f} times on 128 px" in text
