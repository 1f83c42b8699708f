import re

from pipelines.chunk import ChunkingConfig, chunk_document, embed_text
from pipelines.parse import Document, Section, parse


def words(n, prefix="w"):
    return " ".join(f"{prefix}{i}" for i in range(n))


def count(text):
    return len(text.split())


def test_chunks_respect_the_token_budget_including_the_heading():
    doc = Document("T", [Section(("T", "Part"), "part", words(500))])
    chunks = chunk_document("a.md", doc, count, max_tokens=1000, config=ChunkingConfig(50, 10))
    assert len(chunks) > 5
    for c in chunks:
        assert count(embed_text(c)) <= 50


def test_model_maximum_caps_the_configured_size():
    doc = Document("T", [Section(("T",), None, words(300))])
    chunks = chunk_document("a.md", doc, count, max_tokens=40, config=ChunkingConfig(256, 8))
    assert all(count(embed_text(c)) <= 40 for c in chunks)


def test_chunks_do_not_straddle_sections_and_keep_metadata():
    doc = parse("a.md", b"# A\nalpha one\n\n## B\nbeta two\n")
    chunks = chunk_document("a.md", doc, count, max_tokens=100)
    assert [(c.section, c.anchor, c.text, c.position, c.title) for c in chunks] == [
        (("A",), "a", "alpha one", 0, "A"),
        (("A", "B"), "b", "beta two", 1, "A"),
    ]


def test_no_text_is_lost():
    text = words(400, "x") + "\n\n" + words(300, "y")
    doc = Document("T", [Section(("T",), None, text)])
    chunks = chunk_document("a.md", doc, count, max_tokens=60, config=ChunkingConfig(60, 5))
    covered = set(" ".join(c.text for c in chunks).split())
    assert covered == set(text.split())


def test_a_giant_word_is_cut_not_dropped():
    giant = "x" * 5000

    def chars(text):  # a tokenizer where every 10 characters are a token
        return len(text) // 10 + 1

    doc = Document("T", [Section(("T",), None, giant)])
    chunks = chunk_document("a.md", doc, chars, max_tokens=50, config=ChunkingConfig(50, 0))
    assert "".join(re.sub(r"\s", "", c.text) for c in chunks) == giant
    assert all(chars(c.text) <= 50 for c in chunks)
