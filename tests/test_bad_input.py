"""Bad input is reported with a reason and never stops the rest."""

import os
import threading
import time

import pytest

from pipelines.discover import discover
from pipelines.ingest import ParseTimeout, time_limit


def test_oversized_files_are_reported_at_discovery(docs):
    (docs / "huge.txt").write_bytes(b"word " * 300_000)
    files, failed = discover(["docs"], max_bytes=1_000_000)
    assert "docs/huge.txt" not in {f.path for f in files}
    assert [(f.path, "over the 0.953674 MiB limit" in f.error) for f in failed] == [("docs/huge.txt", True)]


def test_odd_file_names_are_reported_not_fatal(docs):
    os.makedirs(docs / "odd", exist_ok=True)
    (docs / "odd" / "new\nline.md").write_text("# x\ny\n")
    with open(os.path.join(os.fsencode(docs / "odd"), b"bad-\xff-name.md"), "wb") as fh:
        fh.write(b"# x\ny\n")
    (docs / "odd" / "spaces and ünïcode.md").write_text("# fine\ntext\n")
    files, failed = discover(["docs/odd"])
    assert [f.path for f in files] == ["docs/odd/spaces and ünïcode.md"]
    reasons = sorted(f.error for f in failed)
    assert reasons == ["file name contains a line break; rename the file", "file name is not valid UTF-8; rename the file"]
    assert all("\n" not in f.path for f in failed)
    for f in failed:
        f.path.encode("utf-8")  # storable and printable


def slow(seconds):
    time.sleep(seconds)
    return "done"


def test_time_limit_in_the_main_thread():
    assert time_limit(1, slow, 0) == "done"
    started = time.perf_counter()
    with pytest.raises(ParseTimeout, match="longer than 0.2 s"):
        time_limit(0.2, slow, 5)
    assert time.perf_counter() - started < 2


def test_time_limit_off_the_main_thread():
    out = []

    def run():
        try:
            time_limit(0.2, slow, 5)
        except ParseTimeout as exc:
            out.append(str(exc))

    t = threading.Thread(target=run)
    t.start()
    t.join(3)
    assert out and "parse_timeout" in out[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(docs):
    target = docs / "secret.md"
    target.write_text("x")
    target.chmod(0)
    files, failed = discover(["docs"])
    assert [f.path for f in failed] == ["docs/secret.md"] and "cannot read" in failed[0].error
