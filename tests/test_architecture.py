"""The house rules, read from the source: every import points down a floor (docs/architecture.md),
no module switches matplotlib's backend at import, and no comment cites material a clone lacks."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = ("src", "bench", "results", "hydra_plugins")

# lowest first; a room may import its own modules and any room on a lower floor, nothing else
FLOORS: list[set[str]] = [
    {"src.config"},
    {"src.storage", "src.seeding"},
    {"src.runs"},
    {"src", "src.callbacks", "src.loggers", "src.data", "src.saliency"},
    {"src.models"},
    {"src.prediction", "src.reduction", "src.early_exit", "src.robustness", "src.sweeps"},
    {"src.sweep_report"},
    {"src.jobs"},
    {"src.train", "src.eval", "src.predict", "src.report", "src.pilot"},
    {"bench", "hydra_plugins"},
    {"results"},
]
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def room(module: str) -> str:
    """The room a module lives in: a package under src/ or a top-level module or folder."""
    parts = module.split(".")
    if parts[0] != "src" or len(parts) == 1:
        return parts[0]
    return f"src.{parts[1]}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(name: str, is_package: bool, text: str) -> list[tuple[str, int]]:
    """(imported module, line) of every import of our own code in module ``name``, TYPE_CHECKING
    ones included."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base]
        else:
            continue
        found += [(target, node.lineno) for target in targets if target.split(".")[0] in CODE]
    return found


def upward_imports(sources: list[tuple[str, str]]) -> list[str]:
    """Every import in ``sources`` ((path under the root, text)) that does not point down a floor."""
    wrong = []
    for shown, text in sources:
        path = ROOT / shown
        here = room(module_name(path))
        for target, line in imports(module_name(path), path.name == "__init__.py", text):
            there = room(target)
            if there == here:
                continue
            if here not in FLOOR or there not in FLOOR:
                wrong.append(f"{shown}:{line}: {here} or {there} is on no floor; add it to FLOORS and docs/architecture.md")
            elif FLOOR[there] >= FLOOR[here]:
                wrong.append(f"{shown}:{line}: {here} (floor {FLOOR[here]}) imports {target} (floor {FLOOR[there]})")
    return wrong


def code_files() -> list[Path]:
    return sorted(path for top in CODE for path in (ROOT / top).rglob("*.py"))


def test_every_import_points_down_a_floor() -> None:
    assert upward_imports([(str(path.relative_to(ROOT)), path.read_text()) for path in code_files()]) == []


def test_an_upward_import_added_on_purpose_is_caught() -> None:
    checkpoints = ROOT / "src" / "storage" / "checkpoints.py"
    upward = checkpoints.read_text() + "\nfrom src.models.unet import UNet\n"
    line = len(upward.splitlines())
    assert upward_imports([("src/storage/checkpoints.py", upward)]) == [
        f"src/storage/checkpoints.py:{line}: src.storage (floor 1) imports src.models.unet (floor {FLOOR['src.models']})"
    ]
    # and so is a circle closed by a TYPE_CHECKING import, from any floor
    circle = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from src.prediction.outputs import write_outputs\n"
    assert upward_imports([("src/models/unet.py", circle)]) == ["src/models/unet.py:3: src.models (floor 4) imports src.prediction.outputs (floor 5)"]


def test_the_architecture_page_shows_every_floor() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    for rooms in FLOORS:
        for name in rooms:
            assert f"`{name}`" in page, f"docs/architecture.md does not place {name}"


def test_no_module_switches_the_matplotlib_backend_at_import() -> None:
    switches = [
        f"{path.relative_to(ROOT)}"
        for path in code_files()
        if re.search(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot", path.read_text())
    ]
    assert switches == []


@pytest.mark.slow
def test_importing_every_module_leaves_the_backend_and_the_environment_alone() -> None:
    # the entry points and the config resolvers set up what a run needs (PROJECT_ROOT is read
    # where paths resolve), so importing our code changes no environment variable (torch,
    # Lightning, MONAI set some of their own when imported: the snapshot is taken after them)
    modules = [module_name(path) for path in code_files() if module_name(path).startswith("src.") and not module_name(path).startswith("src.conf")]
    probe = (
        "import importlib, os, matplotlib, torch, torch._inductor.config, lightning, torchvision, torchmetrics, monai, hydra\nbefore = dict(os.environ)\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(sorted(k for k in {*before, *os.environ} if before.get(k) != os.environ.get(k)))\nprint(matplotlib.get_backend())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    changed, backend = result.stdout.strip().splitlines()[-2:]
    assert changed == "[]"
    assert backend == "svg"


def test_importing_src_registers_nothing_and_register_gives_the_configs_what_they_need() -> None:
    probe = (
        "import src\nfrom omegaconf import OmegaConf\nfrom hydra.core.config_store import ConfigStore\n"
        "names = ['project_root', 'epochs_per_round', 'run_stamp', 'rank_suffix', 'slurm_gpus']\n"
        "print([OmegaConf.has_resolver(n) for n in names], 'schema' in ConfigStore.instance().repo)\n"
        "from src.config.registration import register\nregister()\nregister()\n"
        "print([OmegaConf.has_resolver(n) for n in names], sorted(ConfigStore.instance().repo['schema']))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = result.stdout.strip().splitlines()
    assert before == "[False, False, False, False, False] False"
    assert after == "[True, True, True, True, True] ['background_swap', 'data', 'model', 'reduction']"
    assert "noqa: E402" not in (ROOT / "src" / "__init__.py").read_text()


def test_images_are_opened_in_one_module() -> None:
    openers = [str(path.relative_to(ROOT)) for path in code_files() if "Image.open(" in path.read_text()]
    assert openers == ["src/storage/image_files.py"]


def test_no_comment_or_doc_cites_material_outside_the_repository() -> None:
    pattern = re.compile(r"\bthe notes\b|seed-digest|\bdigest (section|\d)|shared/docs|\bseeds/", re.IGNORECASE)
    texts = [*code_files(), *(ROOT / "src" / "conf").rglob("*.yaml"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    cited = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in texts
        if path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert cited == []


def test_the_configuration_page_lists_every_config_group() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    groups = sorted(p.name for p in (ROOT / "src" / "conf").iterdir() if p.is_dir() and not p.name.startswith("_") and p.name != "hydra")
    assert [g for g in groups if f"| `{g}` |" not in page] == []
