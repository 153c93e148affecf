"""Every notebook in notebooks/ executes top to bottom (so the docs cannot rot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import execute_notebook

pytestmark = pytest.mark.slow  # integration job: every notebook executed; `-m "not slow"` leaves it out

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "evaluation.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, shared_dir: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    execute_notebook(nb, path.parent)  # not NotebookClient(...).execute() here: it swallows Ctrl-C
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # A new user's first run must not be read through warnings (issue 19: the evaluation notebook printed
    # mteb's "Could not determine vocab size", UserWarnings and FutureWarnings).
    stderr = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("name") == "stderr"
    )
    for noise in ("Warning", "Could not determine vocab size", "Traceback"):
        assert noise not in stderr, stderr[max(0, stderr.find(noise) - 500) : stderr.find(noise) + 500]


def test_the_documented_notebook_command_is_installed_by_dev() -> None:
    # issue 19: CONTRIBUTING's nbconvert command needed a package [dev] did not install
    import re

    import tomllib

    repo = Path(__file__).resolve().parent.parent
    assert "jupyter nbconvert --execute" in (repo / "CONTRIBUTING.md").read_text(encoding="utf-8")
    extras = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert any(re.match(r"nbconvert\b", req) for req in extras["dev"]), extras["dev"]
