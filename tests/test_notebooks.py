"""The quickstart notebook runs top to bottom (its code cells, in order, in one namespace)."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_notebook_runs(tmp_path, monkeypatch, ray_local):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAG_NOTEBOOK_INDEX", str(tmp_path / "index"))
    notebook = json.loads((ROOT / "notebooks" / "quickstart.ipynb").read_text())
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "quickstart.ipynb", "exec"), namespace)
    assert namespace["report"].new >= 5 and not namespace["report"].failed
    assert namespace["answer"].text.strip() and namespace["answer"].sources
    assert namespace["again"].correction["id"] == namespace["correction"].id
