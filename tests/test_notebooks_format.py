"""The stored notebooks follow the course conventions (nbval executes them separately)."""

import json
from pathlib import Path

import pytest

from pose_lab import course

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_course_runner_finds_notebooks_in_order(tmp_path):
    for name in ("07_b.ipynb", "00_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in course.find_notebooks(tmp_path)] == ["00_a.ipynb", "07_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in course.find_notebooks(tmp_path, only=["7"])] == ["07_b.ipynb"]
    with pytest.raises(ValueError, match="no notebook"):
        course.find_notebooks(tmp_path, only=["99"])
    with pytest.raises(FileNotFoundError):
        course.find_notebooks(tmp_path / "missing")


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        f"{path.name} is stored with outputs; clear them"
    )
    first = "".join(cells[0]["source"])
    assert "colab-badge.svg" in first and path.name in first, f"{path.name}: Colab badge missing in first cell"
    setup = "".join(code[0]["source"])
    assert "google.colab" in setup and "pip" in setup, f"{path.name}: first code cell must install pose_lab in Colab"
    assert "runtime.describe()" in setup and "is_smoke()" in setup
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
    # nbformat 4.5 requires a unique id per cell (a missing one "will become a hard error" in nbformat)
    if (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5):
        ids = [c.get("id") for c in cells]
        missing = [i for i, v in enumerate(ids) if not v]
        assert not missing, f"{path.name}: cells {missing} have no 'id' (nbformat 4.5); give each a unique id"
        assert len(set(ids)) == len(ids), f"{path.name}: cell ids are not unique"
