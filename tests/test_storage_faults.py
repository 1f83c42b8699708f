"""Storage that fails under the index: a full disk, a read-only mount, a database that goes
away in the middle of an ingest. Each gives a clear error and leaves the previous index."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from indexes import open_index
from indexes.errors import IndexWriteError
from pipelines.ingest import IngestOptions, ingest
from tests.test_crash import make_corpus, snapshot

pytestmark = pytest.mark.integration

RAG = str(Path(sys.executable).with_name("rag"))
FIXTURE_DOCS = Path(__file__).parent / "fixtures" / "docs"


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1M tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


SCENARIO = """
set -u
mount -t tmpfs -o size=3M tmpfs "$MNT"
run() {{ name=$1; shift; "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.rc"; }}
run first {rag} ingest "$DOCS" --index "$MNT/idx" --json
run status1 {rag} status --index "$MNT/idx" --json
run full {rag} ingest "$BIG" --index "$MNT/idx" --json
run status2 {rag} status --index "$MNT/idx" --json
mount -o remount,ro "$MNT"
run ro_search {rag} search "glacier uploads" --index "$MNT/idx" --json
run ro_status {rag} status --index "$MNT/idx" --json
run ro_ingest {rag} ingest "$BIG" --index "$MNT/idx" --json
"""


@pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces (unshare -m) to make a full / read-only disk")
def test_full_disk_and_read_only_mount(tmp_path):
    """A real tmpfs of 3 MiB fills up mid-ingest; then it is remounted read-only."""
    mnt, out, big = tmp_path / "mnt", tmp_path / "out", tmp_path / "big"
    for d in (mnt, out, big):
        d.mkdir()
    for i in range(40):  # ~5 MiB of text: more than the disk holds once indexed
        (big / f"f{i}.md").write_text(f"# Part {i}\n\n" + " ".join(f"w{(i * 7919 + k) % 5003}x{k % 97}" for k in range(16000)))
    env = {**os.environ, "RAG_EMBEDDING_MODEL": "fake-hash", "HF_HUB_OFFLINE": "1",
           "MNT": str(mnt), "OUT": str(out), "DOCS": str(FIXTURE_DOCS), "BIG": str(big)}
    subprocess.run(["unshare", "-m", "sh", "-c", SCENARIO.format(rag=RAG)], env=env, check=True, timeout=600)

    def result(name):
        return int((out / f"{name}.rc").read_text()), (out / f"{name}.out").read_text(), (out / f"{name}.err").read_text()

    assert result("first")[0] == 0
    rc, stdout, stderr = result("full")
    assert rc == 1 and "Traceback" not in stderr, stderr
    assert "the disk is full" in json.loads(stdout)["error"] and "Nothing was changed" in json.loads(stdout)["error"]
    assert json.loads(result("status2")[1]) == json.loads(result("status1")[1])  # the previous index, intact

    rc, stdout, stderr = result("ro_search")
    assert rc == 0, stderr  # a read-only index still answers
    assert json.loads(stdout)["hits"][0]["path"].endswith("storage.rst")
    assert json.loads(result("ro_status")[1]) == json.loads(result("status1")[1])
    rc, stdout, stderr = result("ro_ingest")
    assert rc == 1 and "read-only" in json.loads(stdout)["error"] and "Traceback" not in stderr


def _kill_the_writer(location):
    """An on_progress hook that terminates the ingest's own database session once it writes."""
    import psycopg

    from indexes.pgvector_index import split_location

    conninfo, _ = split_location(location)
    fired = []

    def hook(stage, done, total):
        if stage == "write" and not fired:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                # the writer holds the collection's advisory lock; end exactly that session
                pids = [r[0] for r in conn.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()")]
                for pid in pids:
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            fired.append(pids)
    return hook, fired


def test_database_gone_mid_ingest_fails_cleanly_and_resumes(workdir, ray_local, pg_collection):
    corpus = workdir / "corpus"
    corpus.mkdir()
    make_corpus(corpus, 12)
    options = IngestOptions(embedding_model="fake-hash")
    first = open_index(pg_collection)
    ingest([str(corpus)], first, options)
    before = snapshot(pg_collection)
    for i in range(12, 20):  # more files, and some changed
        (corpus / f"file{i:03}.md").write_text(f"# New {i}\n\n" + " ".join(f"n{i}x{k}" for k in range(300)))
    (corpus / "file000.md").write_text("# Changed\n\nchanged text " * 50)

    index = open_index(pg_collection)
    hook, fired = _kill_the_writer(pg_collection)
    with pytest.raises(IndexWriteError, match="Lost the connection to PostgreSQL") as caught:
        ingest([str(corpus)], index, options, on_progress=hook)
    assert fired and fired[0], "the writer's session was not found"
    assert "password" not in str(caught.value).lower() or "***" in str(caught.value)
    assert snapshot(pg_collection) == before  # nothing half-written

    report = ingest([str(corpus)], index, options)  # the database is back: the same run resumes
    assert (report.new, report.changed) == (8, 1) and not report.failed
    clean_at = pg_collection + "_clean"
    ingest([str(corpus)], open_index(clean_at), options)
    assert snapshot(pg_collection) == snapshot(clean_at)


def test_database_down_is_a_clear_error(workdir):
    index = open_index("postgresql://rag:secret@127.0.0.1:9/rag?collection=docs")
    with pytest.raises(Exception) as caught:
        index.count()
    assert "Cannot connect to PostgreSQL" in str(caught.value) and "secret" not in str(caught.value)


def test_an_index_outlives_its_database_going_down_and_coming_back(tmp_path):
    """While the server is down a query fails within the pool's wait (10 s, not 30) and then at
    once; the first query after it is back succeeds at once (a new pool, no backoff to sit out)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from indexes.errors import RagError

    def pg(command):  # a process of its own, as a user runs it (pgserver keeps a server while its starter lives)
        rag = str(Path(sys.executable).with_name("rag"))
        return subprocess.run([rag, "pg", command, "--data", str(tmp_path / "pg")], capture_output=True, text=True,
                              timeout=120)

    url = pg("start").stdout.strip()
    index = open_index(url + ("&" if "?" in url else "?") + "collection=outage")
    try:
        assert index.count() == 0
        assert pg("stop").stderr.strip() == "Stopped."
        for most in (15, 3):
            started = time.perf_counter()
            with pytest.raises(RagError, match="PostgreSQL"):
                index.count()
            assert time.perf_counter() - started < most
        pg("start")
        started = time.perf_counter()
        assert index.count() == 0 and time.perf_counter() - started < 3
    finally:
        index.close()
        pg("stop")
