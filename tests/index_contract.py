"""One battery of tests that every index backend passes. A backend's test class supplies
only the `make_index` fixture: a function that opens (or reopens) the same index."""

import threading

import pytest

from indexes import Chunk, IndexInfo, IndexLockedError, IndexMismatchError
from pipelines.embed import HashEmbedder
from tests.conftest import write_chunks

E = HashEmbedder()


def chunks(path, *texts, **meta):
    return [Chunk(path=path, text=t, position=i, section=("S",), metadata=dict(meta)) for i, t in enumerate(texts)]


def search(index, text, k=5, where=None):
    return [h.chunk.text for h in index.search(E.embed_query(text), k, where)]


class IndexContract:
    """Subclasses provide a `make_index` fixture."""

    def test_empty_index(self, make_index):
        index = make_index()
        assert index.info() is None and index.count() == 0 and index.manifest() == {}
        assert search(index, "anything") == []

    def test_add_search_and_k_larger_than_count(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "red apples", "green pears"), "b.md": chunks("b.md", "blue sky")})
        assert index.count() == 3
        assert search(index, "red apples", k=1) == ["red apples"]
        assert len(search(index, "sky", k=50)) == 3
        hit = index.search(E.embed_query("blue sky"), 1)[0]
        assert hit.score == pytest.approx(1.0, abs=1e-3) and hit.chunk.path == "b.md" and hit.chunk.section == ("S",)

    def test_upsert_replaces_a_files_chunks(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "old text one", "old text two")})
        write_chunks(index, E, {"a.md": chunks("a.md", "new text")})
        assert index.count() == 1 and search(index, "old text one") == ["new text"]
        assert index.manifest()["a.md"].chunks == 1

    def test_remove_files(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "alpha"), "b.md": chunks("b.md", "beta")})
        with index.writer(index.info()) as w:
            w.remove_files(["a.md"])
        assert search(index, "alpha") == ["beta"] and list(index.manifest()) == ["b.md"]

    def test_metadata_filters(self, make_index):
        index = make_index()
        write_chunks(index, E, {
            "docs/a.md": chunks("docs/a.md", "apple pie", lang="en"),
            "other/b.md": chunks("other/b.md", "apple tart", lang="fr"),
        })
        assert search(index, "apple", where={"path": "docs/*"}) == ["apple pie"]
        assert search(index, "apple", where={"lang": "fr"}) == ["apple tart"]
        assert search(index, "apple", where={"section": "S"}, k=5) != []
        assert search(index, "apple", where={"section": "nope"}) == []
        write_chunks(index, E, {"c.md": [Chunk("c.md", "apple cake", 0, "Cakes", ("Cakes",), "cakes", "https://x/c.html#cakes")]})
        for where in ({"title": "Cakes"}, {"anchor": "cakes"}, {"url": "https://x/c.html#cakes"}):
            assert search(index, "apple", where=where) == ["apple cake"], where
        assert search(index, "apple", where={"title": "Pies"}) == []
        assert "apple cake" not in search(index, "apple", where={"anchor": None}) and search(index, "apple", where={"url": None})

    def test_model_mismatch_is_refused_with_advice(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "x")})
        with pytest.raises(IndexMismatchError, match="built with embedding model 'fake-hash'.*--index"):
            index.check_model("all-MiniLM-L6-v2", 384)
        with pytest.raises(IndexMismatchError):
            with index.writer(IndexInfo("other-model", 64)):
                pass

    def test_a_failed_write_leaves_the_old_index(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "keep me")})
        with pytest.raises(RuntimeError):
            with index.writer(index.info()) as w:
                w.remove_files(["a.md"])
                w.add_chunks(chunks("b.md", "half written"), E.embed_documents(["half written"]))
                raise RuntimeError("crash in the middle of a commit")
        assert search(index, "anything") == ["keep me"] and list(index.manifest()) == ["a.md"]

    def test_second_writer_is_refused_while_one_is_open(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "x")})
        other = make_index()
        with index.writer(index.info()):
            with pytest.raises(IndexLockedError, match="Another process is writing"):
                with other.writer(index.info()):
                    pass

    def test_readers_see_the_old_state_during_a_write(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "old")})
        reader = make_index()
        seen = []
        with index.writer(index.info()) as w:
            w.remove_files(["a.md"])
            w.add_chunks(chunks("a.md", "new"), E.embed_documents(["new"]))
            t = threading.Thread(target=lambda: seen.append(search(reader, "x")))
            t.start()
            t.join()
        assert seen == [["old"]]
        assert search(reader, "x") == ["new"]

    def test_lexical_search_ranks_keyword_matches_and_follows_deletes(self, make_index):
        index = make_index()
        write_chunks(index, E, {
            "a.md": chunks("a.md", "the glacier backend retries uploads", "thumbnails are lazy"),
            "b.md": chunks("b.md", "glacier glacier cold storage pricing"),
        })
        hits = index.lexical_search("How do glacier uploads work?", 5)
        assert [h.chunk.text for h in hits][:1] == ["the glacier backend retries uploads"]
        assert all(h.score > 0 for h in hits) and len(hits) == 2
        assert index.lexical_search("what is the", 5) == []  # only stopwords
        assert index.lexical_search('"; DROP TABLE chunks; --', 5) == []  # quoted terms, no injection
        assert [h.chunk.path for h in index.lexical_search("glacier", 5, where={"path": "b.md"})] == ["b.md"]
        with index.writer(index.info()) as w:
            w.remove_files(["b.md"])
        assert [h.chunk.path for h in index.lexical_search("glacier pricing", 5)] == ["a.md"]
        assert index.lexical_search("retry", 5)[0].chunk.text.startswith("the glacier")  # stemmed

    def test_k_zero_and_many_queries(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "alpha", "beta")})
        assert index.search(E.embed_query("alpha"), 0) == []
        both = index.search_many(E.embed_documents(["alpha", "beta"]), 1)
        assert [[h.chunk.text for h in hits] for hits in both] == [["alpha"], ["beta"]]

    def test_reload_from_storage(self, make_index):
        index = make_index()
        write_chunks(index, E, {"a.md": chunks("a.md", "alpha", "beta")})
        index.close()
        again = make_index()
        assert search(again, "beta", k=1) == ["beta"] and again.count() == 2
        assert again.info().embedding_model == "fake-hash" and again.info().dimension == 64
        assert again.manifest()["a.md"].hash == "hash-a.md"
