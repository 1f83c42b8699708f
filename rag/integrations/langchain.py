"""rag as LangChain components: a retriever over any rag index, the `Assistant` as a
Runnable, and LangChain `Document`s ingested through rag's pipeline.

    from rag import Assistant, Config
    from rag.integrations.langchain import AssistantRunnable, RagRetriever, ingest_documents

    assistant = Assistant(Config(index=".rag"))
    ingest_documents(TextLoader("notes.md").load(), assistant)
    docs = RagRetriever(assistant=assistant, k=5).invoke("How do I configure X?")
    answer = AssistantRunnable(assistant).invoke("How do I configure X?")  # Answer.to_dict()
    for piece in AssistantRunnable(assistant).pick("answer").stream("How do I configure X?"):
        print(piece, end="")

Needs `pip install 'rag[langchain]'` (langchain-core).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from indexes.errors import RagError, require
from indexes.types import Hit
from pipelines.ingest import IngestReport
from rag.assistant import Assistant
from rag.integrations.texts import TextDocument, ingest_texts

require("langchain_core", "langchain")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import Runnable, RunnableConfig  # noqa: E402
from langchain_core.runnables.utils import AddableDict  # noqa: E402

__all__ = ["AssistantRunnable", "RagRetriever", "hit_to_document", "ingest_documents"]

Question = str | dict[str, Any]
_QUESTION_KEYS = {"question", "k", "where", "history", "conversation_id"}


def hit_to_document(hit: Hit) -> Document:
    """A rag hit as a LangChain Document: the chunk text, and where it came from as metadata."""
    c = hit.chunk
    chunk_id = f"{c.path}:{c.position}"
    return Document(
        id=chunk_id,
        page_content=c.text,
        metadata={
            **c.metadata, "chunk_id": chunk_id, "path": c.path, "position": c.position, "url": c.url,
            "title": c.title, "section": list(c.section), "anchor": c.anchor, "score": hit.score,
        },
    )


class RagRetriever(BaseRetriever):
    """The assistant's retrieval (dense, keyword or hybrid, with its reranker and filters) as a
    LangChain retriever. Works over any rag index: the one the assistant is configured with."""

    assistant: Assistant
    k: int | None = None  # None: the assistant's top_k
    where: dict[str, Any] | None = None  # metadata filter, as in Assistant.search

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(hit) for hit in self.assistant.search(query, self.k, self.where)]


class AssistantRunnable(Runnable[Question, dict[str, Any]]):
    """`Assistant.ask` as a LangChain Runnable.

    Input: a question, or {"question": ..., "k": ..., "where": ..., "history": [...],
    "conversation_id": ...}. Output: `Answer.to_dict()`. `stream` yields that dict in pieces
    that add up to it: {"answer": text piece} as the model generates, then one piece with the
    rest; `.pick("answer").stream(...)` yields the text pieces alone. Async calls run the
    sync ones in a thread (and `astream` yields one piece).
    """

    def __init__(self, assistant: Assistant, k: int | None = None, where: dict[str, Any] | None = None):
        self.assistant, self.k, self.where = assistant, k, where

    def invoke(self, input: Question, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.assistant.ask(**self._arguments(input)).to_dict()

    def stream(self, input: Question, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[dict[str, Any]]:
        streamed = ""
        for item in self.assistant.stream(**self._arguments(input)):
            if isinstance(item, str):
                streamed += item
                yield AddableDict(answer=item)
                continue
            rest = item.to_dict()
            text = rest.pop("answer")
            if text != streamed:  # the text that stands in for an answer the model could not give
                rest["answer"] = text[len(streamed):]  # an answer's text begins with what was streamed
            yield AddableDict(rest)

    def _arguments(self, input: Question) -> dict[str, Any]:
        if isinstance(input, str):
            return {"question": input, "k": self.k, "where": self.where}
        unknown = set(input) - _QUESTION_KEYS
        if "question" not in input or unknown:
            raise RagError(
                f"AssistantRunnable takes a question string or a dict with the keys "
                f"{sorted(_QUESTION_KEYS)} ('question' required); got the keys {sorted(input)}."
            )
        return {"k": self.k, "where": self.where, **input}


def ingest_documents(documents: Iterable[Document], assistant: Assistant) -> IngestReport:
    """Chunk, embed and write LangChain Documents into the assistant's index, incrementally.

    A document is keyed by `metadata["source"]` (what LangChain's loaders set), else by its
    `id`; documents that share a source (a PDF loader's pages) are one source. Metadata used:
    `title`, `url` (a source that is an http(s) URL is also the url), `page`.
    """
    return ingest_texts((_text_document(d) for d in documents), assistant)


def _text_document(document: Document) -> TextDocument:
    meta = document.metadata
    key = meta.get("source") or document.id
    if not key:
        raise RagError(
            "A LangChain Document needs metadata['source'] or an id, so that ingesting it again "
            "replaces it instead of adding a copy. Set one, e.g. Document(page_content=..., id='faq-1')."
        )
    key = str(key)
    url = meta.get("url") or (key if key.startswith(("http://", "https://")) else None)
    page = meta.get("page")
    return TextDocument(key, document.page_content, meta.get("title"), url, page if isinstance(page, int) else None)
