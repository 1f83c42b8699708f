import os

from indexes.types import FileRecord
from pipelines.discover import discover, file_hash, plan


def test_discover_finds_supported_files_and_skips_hidden_and_venv(docs):
    (docs / ".hidden.md").write_text("x")
    (docs / ".venv").mkdir()
    (docs / ".venv" / "x.md").write_text("x")
    (docs / "image.png").write_bytes(b"\x89PNG")
    files, failed = discover(["docs"])
    assert sorted(f.path for f in files) == ["docs/faq.html", "docs/guide/install.md", "docs/guide/storage.rst", "docs/notes.txt"]
    assert failed == []
    assert all(len(f.hash) == 64 for f in files)


def test_missing_path_and_unsupported_file_are_failures(docs):
    (docs / "data.bin").write_bytes(b"x")
    files, failed = discover(["nope", "docs/data.bin"])
    assert files == []
    assert [(f.path, f.error.split(";")[0]) for f in failed] == [
        ("nope", "no such file or directory"),
        ("docs/data.bin", "unsupported file type .bin"),
    ]


def test_symlink_loop_and_broken_link_do_not_hang(docs):
    os.symlink("..", docs / "loop")
    os.symlink("missing.md", docs / "broken.md")
    files, failed = discover(["docs"])
    assert len(files) == 4
    assert [f.path for f in failed] == ["docs/broken.md"]


def test_plan_tells_new_changed_unchanged_removed(docs):
    manifest = {
        "docs/notes.txt": FileRecord("docs/notes.txt", file_hash(docs / "notes.txt"), 1),
        "docs/faq.html": FileRecord("docs/faq.html", "old-hash", 2),
        "docs/gone.md": FileRecord("docs/gone.md", "h", 1),
        "elsewhere/kept.md": FileRecord("elsewhere/kept.md", "h", 1),
    }
    p = plan(["docs"], manifest)
    assert [f.path for f in p.unchanged] == ["docs/notes.txt"]
    assert [f.path for f in p.changed] == ["docs/faq.html"]
    assert sorted(f.path for f in p.new) == ["docs/guide/install.md", "docs/guide/storage.rst"]
    assert p.removed == ["docs/gone.md"]  # files outside the ingested paths are left alone


def test_unchanged_failed_file_is_reported_from_the_manifest(docs):
    h = file_hash(docs / "notes.txt")
    manifest = {"docs/notes.txt": FileRecord("docs/notes.txt", h, 0, "empty file")}
    p = plan(["docs/notes.txt"], manifest)
    assert p.todo == [] and [(f.path, f.error) for f in p.failed] == [("docs/notes.txt", "empty file")]


def test_a_file_whose_parse_ran_out_of_time_is_tried_again(docs):
    h = file_hash(docs / "notes.txt")
    manifest = {"docs/notes.txt": FileRecord("docs/notes.txt", h, 0, "parsing took longer than 0.001 s (parse_timeout)")}
    p = plan(["docs/notes.txt"], manifest)
    assert [f.path for f in p.new] == ["docs/notes.txt"] and p.failed == []
