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
    # with the real embedding model and the default matcher: a rewording it is sure of gets the
    # correction, a question that only shares its words does not, and a reviewer settles the rest
    asked = namespace["asked"]
    assert asked["How do I fix an incorrect answer?"].correction["id"] == namespace["correction"].id
    assert asked["How do I correct a wrong citation?"].correction is None
    assert asked["How can a wrong answer be corrected?"].correction is None
    confirmed = namespace["confirmed"]  # the asker's yes: the answer now, a reviewer's decision later
    assert confirmed.correction["id"] == namespace["correction"].id and confirmed.correction["link_pending"]
    assert {s["question"] for s in namespace["queue"]} == {"How do I correct a wrong citation?",
                                                          "How can a wrong answer be corrected?"}
    assert namespace["queue"][0]["confirmed_by_asker"]
    assert namespace["linked"].correction["id"] == namespace["correction"].id
    assert namespace["assistant"].suggest_links() == []


def test_ray_docs_notebook_runs_on_a_small_corpus(tmp_path, monkeypatch, ray_local):
    """The Ray docs notebook, parameterized with the fixture docs: ingest, ask, serve, ask over HTTP."""
    pytest.importorskip("ray.serve")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RAY_DOCS", str(ROOT / "tests" / "fixtures" / "docs"))
    monkeypatch.setenv("RAG_NOTEBOOK_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_NOTEBOOK_PORT", str(port))
    monkeypatch.setenv("RAG_NOTEBOOK_QUESTIONS", "How do I upgrade Wombat?|How many times are uploads retried?")
    monkeypatch.setenv("RAG_LLM_MAX_TOKENS", "32")
    notebook = json.loads((ROOT / "notebooks" / "ray_docs_assistant.ipynb").read_text())
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "ray_docs_assistant.ipynb", "exec"), namespace)
    assert namespace["report"].new >= 4 and len(namespace["answers"]) == 2
    assert namespace["reply"]["answer"].strip()
    assert all(s["url"].startswith("https://docs.ray.io/en/master/") for s in namespace["reply"]["sources"])
    assert namespace["chat"]["rag"]["sources"]
