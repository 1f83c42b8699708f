"""SIGKILL `rag ingest` at random moments, then run it again: the index opens, nothing is
duplicated or lost, and it matches a clean ingest."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexes import open_index

pytestmark = pytest.mark.integration

RAG = str(Path(sys.executable).with_name("rag"))
ENV = {**os.environ, "RAG_EMBEDDING_MODEL": "fake-hash", "HF_HUB_OFFLINE": "1"}


def make_corpus(root: Path, n: int = 60) -> None:
    for i in range(n):
        sections = "\n\n".join(f"## Part {j}\n" + " ".join(f"w{i}x{j}x{k}" for k in range(120)) for j in range(4))
        (root / f"file{i:03}.md").write_text(f"# File {i}\n\n{sections}\n")


def ingest(index: str, corpus: Path, check=True):
    out = subprocess.run([RAG, "ingest", str(corpus), "--index", index, "--json"], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert not check or out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def snapshot(location: str):
    index = open_index(location)
    chunks = [(c.path, c.position, c.text) for c in index.chunks()]
    result = (sorted(index.manifest()), chunks, index.count())
    index.close()
    return result


@pytest.fixture(params=["faiss", "pgvector"])
def locations(request, workdir):
    if request.param == "faiss":
        return "clean", "crashy"
    collection = request.getfixturevalue("pg_collection")
    return collection + "_clean", collection + "_crashy"


def test_killed_ingests_recover(workdir, locations):
    clean_at, crashy = locations
    corpus = workdir / "corpus"
    corpus.mkdir()
    make_corpus(corpus)
    started = time.perf_counter()
    ingest(clean_at, corpus)
    clean_seconds = time.perf_counter() - started
    clean = snapshot(clean_at)
    assert len(clean[0]) == 60 and len(set(clean[1])) == len(clean[1]) == clean[2]

    rng = random.Random(7)
    outcomes, took = [], []

    def crash_and_recover(delay: float) -> None:
        proc = subprocess.Popen([RAG, "ingest", str(corpus), "--index", crashy, "--json"], env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        started = time.perf_counter()
        try:
            proc.wait(timeout=delay)
            outcomes.append("finished")
            took.append(time.perf_counter() - started)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # rag ingest itself, as `kill -9` would
            proc.wait()
            outcomes.append(f"killed at {delay:.1f}s")
            took.append(None)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # then its Ray workers, if any are left
            except ProcessLookupError:
                pass
        if crashy.startswith("postgresql") or Path(crashy, "index.sqlite").exists():
            manifest, chunks, count = snapshot(crashy)  # opens after a crash
            assert len(set(chunks)) == len(chunks) == count  # never duplicated
        report = ingest(crashy, corpus)  # the next run finishes the job
        assert not report["failed"]
        assert snapshot(crashy) == clean, outcomes

    def rewrite(first: int) -> None:  # changed files must not duplicate
        nonlocal clean
        for i in range(first, 60, 10):
            (corpus / f"file{i:03}.md").write_text(f"# File {i}\n\nrewritten {i} " * 20)
        ingest(clean_at, corpus)
        clean = snapshot(clean_at)

    for trial in range(4):
        if trial == 2:
            rewrite(0)
        crash_and_recover(rng.uniform(0.5, clean_seconds * 1.1))
    if not any(o.startswith("killed") for o in outcomes):
        # The clean ingest ran slower than these (a loaded machine): kill one run for sure, at
        # half the time that the run with as many changed files took.
        rewrite(5)
        crash_and_recover(took[2] / 2)
    assert any(o.startswith("killed") for o in outcomes), outcomes
