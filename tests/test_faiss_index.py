import numpy as np
import pytest

from indexes import FileRecord, IndexInfo
from indexes.faiss_index import FaissIndex
from tests.conftest import write_chunks
from tests.index_contract import E, IndexContract, chunks, search


class TestFaissIndex(IndexContract):
    @pytest.fixture
    def make_index(self, tmp_path):
        opened = []

        def make():
            opened.append(FaissIndex(tmp_path / "idx"))
            return opened[-1]

        yield make
        for index in opened:
            index.close()


@pytest.fixture
def index(tmp_path):
    return FaissIndex(tmp_path / "idx")


def test_reload_from_disk_and_rebuild_when_faiss_file_is_missing(index, tmp_path):
    write_chunks(index, E, {"a.md": chunks("a.md", "alpha", "beta")})
    index.close()
    again = FaissIndex(tmp_path / "idx")
    assert search(again, "beta", k=1) == ["beta"]
    again.close()
    for f in (tmp_path / "idx").glob("*.faiss"):
        f.unlink()  # as after a crash between the SQLite commit and the FAISS write
    rebuilt = FaissIndex(tmp_path / "idx")
    assert search(rebuilt, "alpha", k=1) == ["alpha"] and rebuilt.count() == 2


def test_vectors_round_trip_exactly(index):
    c = chunks("a.md", "some text")
    v = E.embed_documents(["some text"])
    with index.writer(IndexInfo("fake-hash", 64)) as w:
        w.add_chunks(c, v)
        w.record_files([FileRecord("a.md", "h", 1)])
    index.close()
    for f in index.directory.glob("*.faiss"):
        f.unlink()
    assert np.allclose(index.search(v[0], 1)[0].score, 1.0, atol=1e-3)


def test_an_index_location_that_is_a_file_says_so(tmp_path):
    from indexes.errors import IndexWriteError

    (tmp_path / "notes.txt").write_text("not an index")
    for where in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "idx"):
        with pytest.raises(IndexWriteError, match="notes.txt is a file, not a folder"):
            with FaissIndex(where).writer(IndexInfo("fake-hash", 64)):
                pass


def test_ingesting_a_folder_with_nothing_to_read_says_so(tmp_path):
    from click.testing import CliRunner

    from rag.cli import cli

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "table.csv").write_text("a,b\n")
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "docs"), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 0 and "No files to ingest under" in result.output and "md " in result.output
