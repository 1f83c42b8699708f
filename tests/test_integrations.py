"""The LangChain and LlamaIndex adapters, on the real libraries (installed by the dev extra:
a missing one fails here rather than skips): fast tests on the fake embedder and scripted
chat model, one on the real MiniLM."""

import subprocess
import sys

import pytest
from langchain_core.documents import Document as LCDocument
from langchain_core.runnables import RunnableLambda
from llama_index.core import Document as LIDocument
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

from indexes import Chunk
from indexes.errors import LLMError, MissingExtraError, RagError
from indexes.faiss_index import FaissIndex
from pipelines.embed import HashEmbedder
from rag import Assistant, Config
from rag.integrations import langchain as lc
from rag.integrations import llamaindex as li
from rag.llm import ChatModel, ScriptedChat
from tests.conftest import write_chunks

E = HashEmbedder()


def make_assistant(index, llm=None, **config) -> Assistant:
    return Assistant(Config(embedding_model="fake-hash", **config), index=index, embedder=E,
                     llm=llm or ScriptedChat("Run self-update [1]."))


@pytest.fixture
def index(tmp_path):
    idx = FaissIndex(tmp_path / "idx")
    write_chunks(idx, E, {
        "docs/upgrade.md": [Chunk("docs/upgrade.md", "To upgrade wombat run wombat self-update", 0, "Wombat",
                                  ("Wombat", "Upgrading"), "upgrading", "https://x/upgrade.html#upgrading",
                                  {"page": 2})],
        "docs/storage.md": [Chunk("docs/storage.md", "The glacier backend retries uploads five times", 3,
                                  "Storage", ("Storage",), "storage")],
    })
    return idx


@pytest.fixture
def empty(tmp_path):
    return make_assistant(FaissIndex(tmp_path / "new"))


def without_timing(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("id", "latency_ms")}


# -- LangChain: retriever ------------------------------------------------------------------
def test_langchain_retriever_returns_the_hits_as_documents_with_their_source(index):
    assistant = make_assistant(index)
    docs = lc.RagRetriever(assistant=assistant, k=2).invoke("how to upgrade wombat")
    hits = assistant.search("how to upgrade wombat", 2)
    assert [d.page_content for d in docs] == [h.chunk.text for h in hits]
    first = docs[0]
    assert first.id == "docs/upgrade.md:0"
    assert first.metadata == {
        "chunk_id": "docs/upgrade.md:0", "path": "docs/upgrade.md", "position": 0,
        "url": "https://x/upgrade.html#upgrading", "title": "Wombat", "section": ["Wombat", "Upgrading"],
        "anchor": "upgrading", "page": 2, "score": hits[0].score,
    }
    assert docs[1].metadata["chunk_id"] == "docs/storage.md:3"


def test_langchain_retriever_composes_filters_and_runs_async(index):
    retriever = lc.RagRetriever(assistant=make_assistant(index), where={"path": "docs/storage*"})
    paths = retriever | RunnableLambda(lambda docs: [d.metadata["path"] for d in docs])
    assert paths.invoke("wombat upgrade") == ["docs/storage.md"]
    import asyncio

    docs = asyncio.run(retriever.ainvoke("glacier"))
    assert [d.metadata["path"] for d in docs] == ["docs/storage.md"]


# -- LangChain: the assistant as a Runnable -------------------------------------------------
def test_runnable_answers_a_string_or_a_dict_like_answer_to_dict(index):
    assistant = make_assistant(index)
    runnable = lc.AssistantRunnable(assistant)
    out = runnable.invoke("how to upgrade wombat")
    assert without_timing(out) == without_timing(assistant.ask("how to upgrade wombat").to_dict())
    assert out["answer"] == "Run self-update [1]." and [s["path"] for s in out["sources"]] == ["docs/upgrade.md"]
    one = runnable.invoke({"question": "how to upgrade wombat", "k": 1})
    assert len(one["retrieved"]) == 1


def test_runnable_streams_text_pieces_that_add_up_to_the_answer(index):
    runnable = lc.AssistantRunnable(make_assistant(index))
    # pieces as the model streams them (a word that could begin a prompt leak may wait for the next)
    text_pieces = list(runnable.pick("answer").stream("upgrade wombat"))
    assert len(text_pieces) >= 3 and "".join(text_pieces) == "Run self-update [1]."
    pieces = list(runnable.stream("upgrade wombat"))
    assert [p["answer"] for p in pieces if set(p) == {"answer"}] == text_pieces
    total = pieces[0]
    for piece in pieces[1:]:
        total = total + piece
    assert without_timing(total) == without_timing(runnable.invoke("upgrade wombat"))


class Broken(ChatModel):
    name = "broken"

    def __init__(self, partial: str | None):
        self.partial = partial

    def stream(self, messages, *, max_tokens=256, temperature=0.0):
        if self.partial:
            yield self.partial
        raise LLMError("endpoint down")


@pytest.mark.parametrize("partial", ["partial", None])
def test_runnable_stream_ends_with_the_error_and_any_text_not_streamed(index, partial):
    runnable = lc.AssistantRunnable(make_assistant(index, llm=Broken(partial)))
    pieces = list(runnable.stream("upgrade"))
    last = pieces[-1]
    assert last["error"] == "endpoint down"
    text = "".join(p.get("answer", "") for p in pieces)
    assert text == (partial or "No answer could be generated; the retrieved sources are listed.")


def test_runnable_refuses_a_dict_without_a_question(index):
    runnable = lc.AssistantRunnable(make_assistant(index))
    with pytest.raises(RagError, match="'question' required"):
        runnable.invoke({"query": "upgrade"})


# -- LangChain: ingestion ------------------------------------------------------------------
def test_langchain_documents_are_ingested_incrementally(empty):
    docs = [
        LCDocument("# Wombat\n\n## Upgrading\n\nTo upgrade wombat run wombat self-update",
                   metadata={"source": "notes/wombat.md"}),
        LCDocument("The glacier backend retries uploads five times", id="faq-glacier"),
        LCDocument("Page one talks about thumbnails", metadata={"source": "manual.pdf", "page": 1}),
        LCDocument("Page two talks about previews", metadata={"source": "manual.pdf", "page": 2}),
    ]
    report = lc.ingest_documents(docs, empty)
    assert (report.new, report.changed, report.unchanged, report.chunks_written) == (3, 0, 0, 4)
    hit = empty.search("upgrade wombat", 1)[0].chunk
    assert (hit.path, hit.section, hit.anchor) == ("notes/wombat.md", ("Wombat", "Upgrading"), "upgrading")
    pages = list(empty.index.chunks("manual.pdf"))
    assert [(c.position, c.metadata) for c in pages] == [(0, {"page": 1}), (1, {"page": 2})]

    again = lc.ingest_documents(docs, empty)
    assert (again.new, again.changed, again.unchanged, again.chunks_written) == (0, 0, 3, 0)

    changed = docs[:1] + [LCDocument("The glacier backend retries uploads nine times", id="faq-glacier")]
    third = lc.ingest_documents(changed, empty)
    assert (third.new, third.changed, third.unchanged, third.changed_paths) == (0, 1, 1, ["faq-glacier"])
    assert [c.text for c in empty.index.chunks("faq-glacier")] == ["The glacier backend retries uploads nine times"]
    assert empty.index.count() == 4  # the manual was not given this time, and is kept


def test_a_changed_document_flags_the_corrections_that_cite_it(empty):
    lc.ingest_documents([LCDocument("Retries: five", id="faq")], empty)
    correction = empty.correct("Nine retries.", question="how many retries?", sources=["faq"])
    lc.ingest_documents([LCDocument("Retries: nine", id="faq")], empty)
    assert empty.corrections.get(correction.id).review.startswith("a cited document changed")


def test_a_langchain_document_without_source_or_id_is_refused(empty):
    with pytest.raises(RagError, match="metadata\\['source'\\] or an id"):
        lc.ingest_documents([LCDocument("orphan text")], empty)


def test_an_empty_document_is_reported_as_failed(empty):
    report = lc.ingest_documents([LCDocument("   ", id="blank"), LCDocument("some text", id="ok")], empty)
    assert [(f.path, f.error) for f in report.failed] == [("blank", "no text found")] and report.new == 1


# -- LlamaIndex ----------------------------------------------------------------------------
def test_llamaindex_retriever_returns_nodes_with_scores(index):
    assistant = make_assistant(index)
    nodes = li.RagRetriever(assistant, k=2).retrieve("how to upgrade wombat")
    hits = assistant.search("how to upgrade wombat", 2)
    assert [(n.node.get_content(), n.score) for n in nodes] == [(h.chunk.text, h.score) for h in hits]
    node = nodes[0].node
    assert node.node_id == "docs/upgrade.md:0" and node.ref_doc_id == "docs/upgrade.md"
    assert node.metadata["section"] == ["Wombat", "Upgrading"] and node.metadata["page"] == 2
    assert "position" not in node.get_metadata_str("llm") and "title: Wombat" in node.get_metadata_str("llm")


def test_llamaindex_query_engine_answers_from_the_rag_retriever(index):
    engine = RetrieverQueryEngine.from_args(li.RagRetriever(make_assistant(index), k=1), llm=MockLLM())
    response = engine.query("glacier uploads retries")
    assert [n.node.node_id for n in response.source_nodes] == ["docs/storage.md:3"]
    assert "The glacier backend retries uploads five times" in str(response)  # MockLLM echoes its prompt


def test_llamaindex_documents_are_keyed_by_file_path_or_doc_id(empty):
    docs = [
        LIDocument(text="To upgrade wombat run wombat self-update", metadata={"file_path": "/data/wombat.txt"}),
        LIDocument(text="The glacier backend retries uploads five times", doc_id="faq-glacier"),
        LIDocument(text="Thumbnails page", doc_id="guide", metadata={"page_label": "7", "title": "Guide"}),
    ]
    report = li.ingest_documents(docs, empty)
    assert (report.new, report.chunks_written) == (3, 3)
    assert set(empty.index.manifest()) == {"/data/wombat.txt", "faq-glacier", "guide"}
    guide = next(empty.index.chunks("guide"))
    assert (guide.title, guide.metadata) == ("Guide", {"page": 7})

    docs[1] = LIDocument(text="The glacier backend retries uploads nine times", doc_id="faq-glacier")
    again = li.ingest_documents(docs, empty)
    assert (again.new, again.changed, again.unchanged) == (0, 1, 2)
    assert li.RagRetriever(empty, k=1).retrieve("glacier nine")[0].node.ref_doc_id == "faq-glacier"


# -- extras --------------------------------------------------------------------------------
@pytest.mark.parametrize("module, framework, extra", [
    ("rag.integrations.langchain", "langchain_core", "langchain"),
    ("rag.integrations.llamaindex", "llama_index.core", "llamaindex"),
])
def test_a_missing_framework_names_the_extra(monkeypatch, module, framework, extra):
    monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, framework, None)  # what an uninstalled package looks like to import
    with pytest.raises(MissingExtraError, match=rf"pip install 'rag\[{extra}\]'"):
        __import__(module)


def test_import_rag_needs_neither_framework():
    code = ("import sys; import rag, rag.integrations, rag.integrations.texts; "
            "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'llama_index'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- the real model ------------------------------------------------------------------------
@pytest.mark.integration
def test_documents_from_langchain_are_found_by_meaning_through_both_retrievers(tmp_path, minilm):
    assistant = Assistant(Config(retrieval_mode="dense"), index=FaissIndex(tmp_path / "idx"), embedder=minilm,
                          llm=ScriptedChat())
    lc.ingest_documents([
        LCDocument("# Installing\n\nRun pip install wombat to put the wombat command on your PATH.",
                   metadata={"source": "install.md"}),
        LCDocument("# Storage\n\nUploads to the glacier backend are retried five times with backoff.",
                   metadata={"source": "storage.md"}),
        LCDocument("# Thumbnails\n\nImages get their previews rendered lazily, on first view.",
                   metadata={"source": "thumbs.md"}),
    ], assistant)
    assert assistant.index.info().embedding_model == "all-MiniLM-L6-v2"
    question = "How do I set up the command-line tool?"
    assert lc.RagRetriever(assistant=assistant, k=1).invoke(question)[0].metadata["path"] == "install.md"
    assert li.RagRetriever(assistant, k=1).retrieve("what happens when an upload fails")[0].node.ref_doc_id == "storage.md"
