"""The package's layers never reach back (README, "Library layout").

Data flows one way::

    data (sources, pipelines)  ->  models  ->  training  ->  evaluation

with the pure array modules (runtime, validation, skeletons, geometry,
heatmaps, losses, metrics) and viz beneath them all. A module may import its
own layer and the layers below it, never one above; besides, a model module
imports no data and no metrics module (a builder depends on neither). Every import counts, including those inside
functions (``ast`` walks the whole file), so a lazy import cannot hide an
upward dependency.

The checker is tested on a fixture package holding deliberately wrong
imports (``tests/fixtures/bad_layers/``), so this test can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pose_lab"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "bad_layers" / "pose_lab"

# layer of each top-level part of the package; a module imports only ranks <= its own
BOTTOM = ("runtime", "validation", "skeletons", "geometry", "heatmaps", "boxes", "roi", "losses", "metrics", "viz")
RANKS = {**{name: 0 for name in BOTTOM}, "data": 1, "models": 2, "pretrained": 2, "training": 3,
         "evaluation": 4, "course": 5}
LAYER_NAMES = {0: "the array modules", 1: "data", 2: "models", 3: "training", 4: "evaluation", 5: "tools"}
# imports forbidden although they point downwards: (importer's part, imported part) -> reason
EXTRA_RULES = {("models", "metrics"): "a model module imports no metrics module",
               ("models", "data"): "models must not import data (a builder never depends on a dataset)"}


def _part(module: str) -> str | None:
    """``pose_lab.models.lifting`` -> ``models``; ``pose_lab`` -> None."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[0] == "pose_lab" else None


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str):
    """Yield ``(line, imported module)`` for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pose_lab import metrics` imports pose_lab.metrics
                yield node.lineno, f"{target}.{alias.name}"


def layer_violations(root: Path = PACKAGE) -> list[str]:
    """Every upward (or otherwise forbidden) import under ``root``, as ``file:line: message``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        own = _part(module)
        if own is None or own not in RANKS:
            continue
        for line, target in _imports(path, module):
            other = _part(target)
            if other is None or other not in RANKS or other == own:
                continue
            where = f"{path.relative_to(root.parent)}:{line}"
            if RANKS[other] > RANKS[own]:
                found.append(
                    f"{where}: {module} imports {target}: {LAYER_NAMES[RANKS[own]]} must not import "
                    f"{LAYER_NAMES[RANKS[other]]} (layers run data -> models -> training -> evaluation)"
                )
            elif (own, other) in EXTRA_RULES:
                found.append(f"{where}: {module} imports {target}: {EXTRA_RULES[own, other]}")
    return found


def test_every_top_level_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert parts <= set(RANKS), f"give these a layer in RANKS: {sorted(parts - set(RANKS))}"


def test_package_layers_never_reach_back():
    violations = layer_violations(PACKAGE)
    assert not violations, "upward imports:\n" + "\n".join(violations)


def test_checker_reports_upward_imports_with_file_line_and_rule():
    violations = layer_violations(FIXTURE)
    text = "\n".join(violations)
    # an import inside a function, a relative import, `from pose_lab import x` and a rule of its own
    assert "pose_lab/models/bad.py:7: pose_lab.models.bad imports pose_lab.data.coco: models must not import data (a builder" in text
    assert "pose_lab/data/bad.py:3: pose_lab.data.bad imports pose_lab.models.heads: data must not import models" in text
    assert "pose_lab/training/bad.py:3: pose_lab.training.bad imports pose_lab.evaluation" in text
    assert "pose_lab/models/bad.py:2: pose_lab.models.bad imports pose_lab.metrics: a model module imports no metrics module" in text
    assert "pose_lab/losses.py:2: pose_lab.losses imports pose_lab.training.base" in text
    # allowed imports are not reported
    assert "skeletons" not in text and "bad_ok" not in text
    assert len(violations) == 5, text


@pytest.mark.parametrize("module", ["pose_lab.models.lifting", "pose_lab.training.keypoints2d"])
def test_resolves_relative_and_package_imports(tmp_path, module):
    root = tmp_path / "pose_lab"
    path = root.joinpath(*module.split(".")[1:]).with_suffix(".py")
    path.parent.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (path.parent / "__init__.py").write_text("")
    path.write_text("from ..evaluation import lifting\nfrom pose_lab import evaluation\n")
    violations = layer_violations(root)
    assert [v.split(":")[1] for v in violations] == ["1", "2"], violations
