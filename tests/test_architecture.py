"""The shape of the code: imports flow one way, every public name has a docstring, each
stage's presets cover the registry, and no import changes global state."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "svpgen"
# what each package may import from svpgen (besides the bottom layer of shared helpers)
BOTTOM = {
    "svpgen",
    "atomic",
    "checkpoint",
    "device",
    "distributed",
    "errors",
    "markdown",
    "options",
    "plots",
    "presets",
    "stats",
    "training",
}
ALLOWED = {
    "data": set(),
    "simulate": {"data"},
    "diffusion": {"data"},
    "classify": {"data"},
    "evaluate": {"data", "classify"},
    "qc": {"data"},
    "study": {"data", "simulate", "diffusion", "classify", "evaluate"},
    "cli": {"data", "simulate", "diffusion", "classify", "evaluate", "qc", "study"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "svpgen"


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        yield path, ".".join(p for p in rel.parts if p != "__init__")


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path, module in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else [a.name for a in getattr(node, "names", [])]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.startswith("svpgen"):
                    graph[_package(module)].add(_package(name))
    return graph


def test_imports_flow_one_way():
    graph = import_graph()
    for package, allowed in ALLOWED.items():
        upward = graph[package] - allowed - BOTTOM - {package}
        assert not upward, f"{package} imports {sorted(upward)}"
    for helper in BOTTOM - {"svpgen"}:
        assert graph[helper] <= BOTTOM, (
            f"{helper} (bottom layer) imports {sorted(graph[helper] - BOTTOM)}"
        )


def test_every_public_class_and_function_has_a_docstring():
    missing = []
    for path, module in _modules():
        tree = ast.parse(path.read_text())
        if ast.get_docstring(tree) is None:
            missing.append(module)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None:
                    missing.append(f"{module}.{node.name}")
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        public = isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
                        if (
                            public
                            and ast.get_docstring(item) is None
                            and item.name not in ("to_dict", "from_dict", "forward")
                        ):
                            missing.append(f"{module}.{node.name}.{item.name}")
    assert not missing, f"no docstring: {missing}"


def test_docstrings_point_only_inside_the_repository():
    for path, module in _modules():
        text = path.read_text()
        for outside in ("DESIGN.md", "shared/specs", "shared/fixtures"):
            assert outside not in text, f"{module} points at {outside}"


def test_stage_presets_cover_the_registry():
    from svpgen.classify.config import PRESETS as classifier
    from svpgen.diffusion.config import PRESETS as diffusion
    from svpgen.presets import NAMES
    from svpgen.study.config import PRESETS as study

    for table in (classifier, diffusion, study):
        assert tuple(table) == NAMES


def test_importing_changes_no_global_state():
    code = (
        "import matplotlib, PIL.Image as I; limit = I.MAX_IMAGE_PIXELS; backend = "
        "matplotlib.get_backend();"
        "import svpgen.cli, svpgen.plots, svpgen.data.images;"
        "assert I.MAX_IMAGE_PIXELS == limit, 'Pillow limit changed';"
        "assert matplotlib.get_backend() == backend, 'matplotlib backend switched'"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"MPLBACKEND": "svg", "PATH": ""},
    )
    assert res.returncode == 0, res.stderr[-1500:]


def test_kid_leaves_the_global_rng_alone():
    import numpy as np
    import torch

    from svpgen.evaluate.generative import kid

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    rng = np.random.default_rng(0)
    kid(rng.normal(size=(40, 8)), rng.normal(size=(40, 8)), subsets=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_cli_preset_choices_come_from_the_registry(name):
    from click.testing import CliRunner

    from svpgen.cli import main

    res = CliRunner().invoke(main, ["train-classifier", "--help"])
    assert name in res.output
