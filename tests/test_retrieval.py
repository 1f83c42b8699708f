import pytest

from indexes import Chunk, Hit
from indexes.faiss_index import FaissIndex
from pipelines.embed import HashEmbedder
from rag import Assistant, Config
from rag.llm import ScriptedChat
from rag.retrieval import (LLMReranker, RetrievalSettings, Retriever, load_reranker, parse_ranking,
                           reciprocal_rank_fusion)
from tests.conftest import write_chunks

E = HashEmbedder()


def hit(name, score=0.0):
    return Hit(Chunk(path=name, text=name), score)


def test_rrf_worked_out_by_hand():
    dense = [hit("a"), hit("b"), hit("c")]
    lexical = [hit("c"), hit("d")]
    fused = reciprocal_rank_fusion([dense, lexical], [1.0, 1.0], rrf_k=60)
    # a: 1/61; b: 1/62; c: 1/63 + 1/61; d: 1/62
    assert [h.chunk.path for h in fused] == ["c", "a", "b", "d"]
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61)
    weighted = reciprocal_rank_fusion([dense, lexical], [1.0, 3.0], rrf_k=60)
    assert [h.chunk.path for h in weighted][:2] == ["c", "d"]


@pytest.fixture
def index(tmp_path):
    idx = FaissIndex(tmp_path / "idx")
    write_chunks(idx, E, {
        "a.md": [Chunk("a.md", "zebra migration patterns in the savanna", 0)],
        "b.md": [Chunk("b.md", "error code E1234 means the disk is full", 0)],
        "c.md": [Chunk("c.md", "savanna weather and rainfall", 0)],
    })
    return idx


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_each_mode_finds_the_obvious_document(index, mode):
    r = Retriever(index, E, RetrievalSettings(mode=mode))
    assert r.search("what does error E1234 mean", 1)[0].chunk.path == "b.md"


def test_hybrid_merges_both_lists_without_duplicates(index):
    hits = Retriever(index, E, RetrievalSettings(mode="hybrid")).search("savanna zebra", 10)
    paths = [h.chunk.path for h in hits]
    assert len(paths) == len(set(paths)) == 3 and paths[0] == "a.md"


def test_parse_ranking_is_robust_to_chatty_models():
    assert parse_ranking("The most relevant are 3, then 1. Passage 3 again; 9 is not real.", 4) == [3, 1]
    assert parse_ranking("none of them", 4) == []


def test_llm_reranker_reorders_and_keeps_unranked_in_retrieval_order():
    hits = [hit("a"), hit("b"), hit("c"), hit("d")]
    llm = ScriptedChat("3, 1")
    out = LLMReranker(llm).rerank("q", hits, 4)
    assert [h.chunk.path for h in out] == ["c", "a", "b", "d"]
    assert "[3] " in llm.calls[0][-1]["content"] and "Question: q" in llm.calls[0][-1]["content"]


def test_assistant_uses_the_configured_reranker(index):
    a = Assistant(Config(embedding_model="fake-hash", reranker="llm", top_k=2), index=index, embedder=E,
                  llm=ScriptedChat("2"))
    hits = a.search("savanna")
    assert len(hits) == 2


def test_unknown_reranker_is_a_config_error():
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="cross-encoder:/path"):
        load_reranker("bm42")


@pytest.mark.integration
def test_cross_encoder_plumbing_with_a_model_built_from_the_bundled_minilm(tmp_path, index):
    """No cross-encoder weights can be installed offline: build one from MiniLM's encoder with
    an untrained head. Its scores are meaningless; this checks loading and the plumbing."""
    from sentence_transformers import CrossEncoder

    from pipelines.embed import resolve_model_path

    model = CrossEncoder(str(resolve_model_path("all-MiniLM-L6-v2")), num_labels=1, local_files_only=True)
    model.save(str(tmp_path / "ce"))
    reranker = load_reranker(f"cross-encoder:{tmp_path / 'ce'}")
    hits = [hit("a"), hit("b"), hit("c")]
    out = reranker.rerank("question", hits, 2)
    assert len(out) == 2 and {h.chunk.path for h in out} <= {"a", "b", "c"}
    assert all(isinstance(h.score, float) for h in out)


def test_limit_per_source_keeps_the_best_chunk_of_each_page():
    from rag.retrieval import limit_per_source

    def at(url, pos):
        return Hit(Chunk(path="p", text="t", position=pos, url=url), 0.0)

    hits = [at("https://x/a.html#one", 0), at("https://x/a.html#two", 1), at("https://x/b.html", 2), at("https://x/a.html", 3)]
    assert [h.chunk.position for h in limit_per_source(hits, 1)] == [0, 2]
    assert [h.chunk.position for h in limit_per_source(hits, 2)] == [0, 1, 2]
    assert limit_per_source(hits, 0) == hits


def test_retriever_returns_distinct_pages_by_default(tmp_path):
    idx = FaissIndex(tmp_path / "idx")
    write_chunks(idx, E, {
        "a.md": [Chunk("a.md", "zebra stripes", 0), Chunk("a.md", "zebra herds", 1)],
        "b.md": [Chunk("b.md", "zebra crossing", 0)],
    })
    hits = Retriever(idx, E, RetrievalSettings(mode="dense")).search("zebra", 2)
    assert sorted(h.chunk.path for h in hits) == ["a.md", "b.md"]
    everything = Retriever(idx, E, RetrievalSettings(mode="dense", per_source=0)).search("zebra", 3)
    assert len(everything) == 3
