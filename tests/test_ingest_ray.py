"""Ingestion on the real Ray Data pipeline (fake embedder here for speed; the real model
runs in test_real_parts.py and test_cli.py)."""

import json

import pytest

from indexes.faiss_index import FaissIndex
from pipelines import IngestOptions, ingest
from pipelines.embed import load_embedder

pytestmark = pytest.mark.integration

OPTIONS = IngestOptions(embedding_model="fake-hash")


def paths_in(index):
    return sorted({c.path for c in index.chunks()})


def test_ingest_reports_bad_files_and_keeps_the_good_ones(docs, ray_local):
    (docs / "empty.md").write_bytes(b"")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    (docs / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (docs / "utf16.md").write_bytes("# Caf\u00e9\n\nau lait\n".encode("utf-16"))
    index = FaissIndex("idx")
    events = []
    report = ingest(["docs"], index, OPTIONS, on_progress=lambda *e: events.append(e))
    assert (report.new, report.changed, report.unchanged, report.removed) == (4, 0, 0, 0)
    assert events[0] == ("discover", 1, None) and ("discover", 8, None) in events
    assert events[-1] == ("write", 8, 8)
    assert {f.path: f.error.split(" (")[0] for f in report.failed} == {
        "docs/binary.txt": "binary content",
        "docs/empty.md": "empty file",
        "docs/latin1.txt": "not UTF-8 text",
        "docs/utf16.md": "UTF-16 text, not UTF-8; convert the file to UTF-8 and ingest again",
    }
    assert paths_in(index) == ["docs/faq.html", "docs/guide/install.md", "docs/guide/storage.rst", "docs/notes.txt"]
    assert report.chunks_written == index.count() > 4
    hit = index.search(load_embedder("fake-hash").embed_query("glacier backend uploads retried"), 1)[0]
    assert hit.chunk.path == "docs/guide/storage.rst" and hit.chunk.anchor == "glacier-backend"

    again = ingest(["docs"], index, OPTIONS)
    assert (again.new, again.changed, again.unchanged, again.chunks_written) == (0, 0, 4, 0)
    assert len(again.failed) == 4  # still reported, not parsed again


def test_changed_and_removed_files_are_replaced_and_deleted(docs, ray_local):
    index = FaissIndex("idx")
    first = ingest(["docs"], index, OPTIONS)
    before = index.count()
    (docs / "notes.txt").write_text("Completely new release notes about zebras.\n")
    (docs / "faq.html").unlink()
    report = ingest(["docs"], index, OPTIONS)
    assert (report.new, report.changed, report.unchanged, report.removed) == (0, 1, 2, 1)
    texts = [c.text for c in index.chunks("docs/notes.txt")]
    assert texts == ["Completely new release notes about zebras."]
    assert "docs/faq.html" not in paths_in(index) and "docs/faq.html" not in index.manifest()
    assert index.count() == before - 2 - 1 + 1 == first.chunks_written - 2


def test_a_changed_file_that_now_fails_keeps_its_old_version(docs, ray_local):
    index = FaissIndex("idx")
    ingest(["docs"], index, OPTIONS)
    old = [c.text for c in index.chunks("docs/notes.txt")]
    (docs / "notes.txt").write_bytes(b"")
    report = ingest(["docs"], index, OPTIONS)
    assert [f.path for f in report.failed] == ["docs/notes.txt"] and report.changed == 0
    assert [c.text for c in index.chunks("docs/notes.txt")] == old


def test_source_urls_with_section_anchors(docs, ray_local):
    index = FaissIndex("idx")
    options = IngestOptions(embedding_model="fake-hash", source_url="https://wombat.dev/{path}.html")
    ingest(["docs"], index, options)
    urls = {c.url for c in index.chunks()}
    assert "https://wombat.dev/guide/storage.html#glacier-backend" in urls
    assert "https://wombat.dev/guide/install.html#upgrade-label" in urls
    assert "https://wombat.dev/faq.html#thumbnails" in urls
    assert "https://wombat.dev/notes.html" in urls


def test_ingesting_with_another_model_is_refused_before_any_work(docs, ray_local):
    from indexes import IndexMismatchError

    index = FaissIndex("idx")
    ingest(["docs"], index, OPTIONS)
    (docs / "new.md").write_text("# New\ntext\n")
    with pytest.raises(IndexMismatchError, match="fake-hash"):
        ingest(["docs"], index, IngestOptions(embedding_model="all-MiniLM-L6-v2"))
    assert "docs/new.md" not in index.manifest()


def test_the_same_files_from_another_directory_are_reported(docs, ray_local, monkeypatch):
    """Paths are keyed relative to the working directory: ingesting the same folder from its
    parent adds it again under other paths, and the report says which."""
    index = FaissIndex("idx")
    assert "same_as_indexed" not in ingest(["docs"], index, OPTIONS).to_dict()
    monkeypatch.chdir(docs.parent.parent)
    here = docs.parent.name
    report = ingest([f"{here}/docs"], FaissIndex(f"{here}/idx"), OPTIONS)  # the same index
    assert sorted(report.same_as_indexed)[0] == (f"{here}/docs/faq.html", "docs/faq.html")
    assert report.to_dict()["same_as_indexed"][0] == [f"{here}/docs/faq.html", "docs/faq.html"]
    monkeypatch.chdir(docs.parent)
    fresh = FaissIndex("fresh")
    ingest(["docs"], fresh, OPTIONS)
    (docs / "notes.txt").rename(docs / "renamed.txt")  # a file renamed in place is no copy
    assert "same_as_indexed" not in ingest(["docs"], fresh, OPTIONS).to_dict()


def test_pdf_pages_survive_the_pipeline_and_filter(docs, ray_local):
    from tests.docgen import make_pdf

    (docs / "manual.pdf").write_bytes(make_pdf(["Wombat boots from flash.", "", "Wombat reactors need coolant."]))
    index = FaissIndex("idx")
    ingest(["docs"], index, OPTIONS)
    assert {c.metadata.get("page") for c in index.chunks("docs/manual.pdf")} == {1, 3}
    query = load_embedder("fake-hash").embed_query("Wombat reactors need coolant")
    hits = index.search(query, 5, where={"page": 3})
    assert [h.chunk.text for h in hits] == ["Wombat reactors need coolant."]
    assert index.search(query, 5, where={"page": 2}) == []


def test_a_parse_that_ran_out_of_time_is_tried_again_on_the_next_run(docs, ray_local):
    from dataclasses import replace

    (docs / "notes.txt").write_text("Wombat release notes.\n\n" * 20_000)  # parsing takes far more than 1 µs
    index = FaissIndex("idx")
    hurried = ingest(["docs/notes.txt"], index, replace(OPTIONS, parse_timeout=1e-6))
    assert [f.path for f in hurried.failed] == ["docs/notes.txt"] and "parse_timeout" in hurried.failed[0].error
    again = ingest(["docs/notes.txt"], index, OPTIONS)  # same bytes, the default limit
    assert again.new == 1 and again.failed == [] and index.count() > 0


def test_rag_ingest_of_a_missing_path_is_an_error_unless_it_was_indexed(docs, ray_local, monkeypatch):
    """A mistyped or unmounted folder exits 1 (not 4, and not 0 under --allow-failures) and
    creates nothing; a file that was indexed and is gone is removed, as before."""
    from pathlib import Path

    from click.testing import CliRunner

    from rag.cli import cli

    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-hash")
    result = CliRunner().invoke(cli, ["ingest", "docs/nope", "--index", "idx", "--allow-failures"])
    assert result.exit_code == 1 and "No such file or folder: docs/nope" in result.output
    assert not Path("idx").exists()
    assert CliRunner().invoke(cli, ["ingest", "docs/notes.txt", "--index", "idx"]).exit_code == 0
    (docs / "notes.txt").unlink()
    result = CliRunner().invoke(cli, ["ingest", "docs/notes.txt", "--index", "idx", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["removed"] == 1


def test_changed_chunking_settings_process_the_files_again(docs, ray_local):
    """A new URL template or chunk size is a change: the files are chunked again (not counted as
    changed content, so corrections citing them are not flagged), then unchanged as before. Each
    file records its own settings: a run without a template leaves the URLs as they are."""
    from pipelines.chunk import ChunkingConfig

    index = FaissIndex("idx")
    first = ingest(["docs"], index, OPTIONS)
    with_urls = IngestOptions(embedding_model="fake-hash", source_url="https://wombat.dev/{path}.html")
    report = ingest(["docs"], index, with_urls)
    assert (report.new, report.changed, report.unchanged, report.rechunked) == (0, 0, 0, first.new)
    assert report.changed_paths == [] and report.settings_changed["now"]["source_url"] == with_urls.source_url
    assert all(c.url and c.url.startswith("https://wombat.dev/") for c in index.chunks())
    for same in (with_urls, OPTIONS):  # the same template, or none given: nothing to redo
        again = ingest(["docs"], index, same)
        assert (again.unchanged, again.rechunked, again.settings_changed) == (first.new, 0, None)
    (docs / "new.md").write_text("# New\n\nA new page.\n")
    quiet = ingest(["docs"], index, OPTIONS)  # no template: the new file gets no URL, and that is said
    assert quiet.new == 1 and quiet.no_url == 1 and next(index.chunks("docs/new.md")).url is None
    (docs / "newer.md").write_text("# Newer\n\nAnother page.\n")
    assert ingest(["docs"], index, OPTIONS).no_url == 1  # still said: the template last given is kept
    assert ingest(["docs"], index, with_urls).rechunked == 2  # given one now: only they are redone
    smaller = IngestOptions(embedding_model="fake-hash", chunking=ChunkingConfig(chunk_tokens=32, chunk_overlap=0))
    report = ingest(["docs"], index, smaller)  # other chunk sizes, no template given: each file keeps its URL
    assert report.rechunked == first.new + 2 and index.count() > first.chunks_written + 2 and not report.no_url
    assert all(c.url and c.url.startswith("https://wombat.dev/") for c in index.chunks())
    assert index.info().chunking["chunk_tokens"] == 32
    (docs / "notes.txt").write_text("Changed notes about wombats.\n")
    changed = ingest(["docs"], index, smaller)  # changed content, no template: it keeps its page URL too
    assert changed.changed == 1 and next(index.chunks("docs/notes.txt")).url == "https://wombat.dev/notes.html"
    dropped = ingest(["docs"], index, IngestOptions(embedding_model="fake-hash", source_url="",
                                                    chunking=smaller.chunking))  # "": no URLs
    assert dropped.rechunked == first.new + 2 and all(c.url is None for c in index.chunks())


def test_folders_sharing_an_index_keep_their_own_url_templates(docs, ray_local):
    from pipelines.chunk import ChunkingConfig

    index = FaissIndex("idx")
    guide = IngestOptions(embedding_model="fake-hash", source_url="https://guide.dev/{path}.html")
    notes = IngestOptions(embedding_model="fake-hash", source_url="https://notes.dev/{path}.html")
    ingest(["docs/guide"], index, guide)
    ingest(["docs/notes.txt"], index, notes)
    assert ingest(["docs/guide"], index, guide).rechunked == 0  # the other folder's template is no change here
    first = ingest(["docs/faq.html"], index, OPTIONS)
    report = ingest(["docs/faq.html"], index, guide)
    assert report.rechunked == 1 and report.elsewhere == 0  # notes.txt's own template is no business of this run
    smaller = IngestOptions(embedding_model="fake-hash", chunking=ChunkingConfig(chunk_tokens=32, chunk_overlap=0))
    assert ingest(["docs/guide"], index, smaller).elsewhere == 2  # other chunk sizes outside: notes.txt, faq.html
    assert next(index.chunks("docs/notes.txt")).url.startswith("https://notes.dev/") and first.new == 1


def test_entries_from_an_earlier_release_are_read_as_this_ones(docs, ray_local):
    """Entries written before files recorded their settings hold the content's hash alone:
    the first run reads them with the chunk sizes the index recorded and the page URL of one
    of their chunks, and stores that, so later runs judge them like any other."""
    from indexes import FileRecord
    from pipelines.chunk import ChunkingConfig

    index = FaissIndex("idx")
    with_urls = IngestOptions(embedding_model="fake-hash", source_url="https://wombat.dev/#/{path}")
    ingest(["docs/guide"], index, with_urls)
    ingest(["docs/faq.html"], index, OPTIONS)
    old = {p: FileRecord(p, r.hash.split(";")[0], r.chunks) for p, r in index.manifest().items()}
    with index.writer(index.info()) as writer:
        writer.record_files(list(old.values()))
    again = ingest(["docs/guide"], index, with_urls)  # the same template: nothing to redo, entries stored
    assert again.rechunked == 0 and all(r.hash.count(";") == 2 for r in index.manifest().values())
    smaller = IngestOptions(embedding_model="fake-hash", chunking=ChunkingConfig(chunk_tokens=32, chunk_overlap=0))
    report = ingest(["docs/guide"], index, smaller)  # no template: each keeps its page, "#/" and all
    assert report.rechunked == 2 and report.elsewhere == 1
    assert next(index.chunks("docs/guide/install.md")).url.startswith("https://wombat.dev/#/install")
    assert ingest(["docs/faq.html"], index, smaller).rechunked == 1  # its entry kept the sizes it was made with
    dropped = ingest(["docs/guide"], index, IngestOptions(embedding_model="fake-hash", source_url="",
                                                          chunking=smaller.chunking))
    assert dropped.rechunked == 2 and all(c.url is None for c in index.chunks("docs/guide/install.md"))
