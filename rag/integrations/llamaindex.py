"""rag as LlamaIndex components: a retriever over any rag index, and LlamaIndex `Document`s
ingested through rag's pipeline.

    from rag import Assistant, Config
    from rag.integrations.llamaindex import RagRetriever, ingest_documents

    assistant = Assistant(Config(index=".rag"))
    ingest_documents(SimpleDirectoryReader("notes", filename_as_id=True).load_data(), assistant)
    engine = RetrieverQueryEngine.from_args(RagRetriever(assistant, k=5), llm=my_llm)

Needs `pip install 'rag[llamaindex]'` (llama-index-core).
"""

from __future__ import annotations

from typing import Any, Iterable

from indexes.errors import require
from indexes.types import Hit
from pipelines.ingest import IngestReport
from rag.assistant import Assistant
from rag.integrations.texts import TextDocument, ingest_texts

require("llama_index.core", "llamaindex")

from llama_index.core import Document  # noqa: E402
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode  # noqa: E402

__all__ = ["RagRetriever", "hit_to_node", "ingest_documents"]

_NOT_FOR_THE_LLM = ["chunk_id", "position", "anchor"]


def hit_to_node(hit: Hit) -> NodeWithScore:
    """A rag hit as a LlamaIndex node with its score; its source document is the chunk's path."""
    c = hit.chunk
    chunk_id = f"{c.path}:{c.position}"
    node = TextNode(
        id_=chunk_id,
        text=c.text,
        metadata={
            **c.metadata, "chunk_id": chunk_id, "path": c.path, "position": c.position, "url": c.url,
            "title": c.title, "section": list(c.section), "anchor": c.anchor,
        },
        excluded_llm_metadata_keys=_NOT_FOR_THE_LLM,
        excluded_embed_metadata_keys=_NOT_FOR_THE_LLM,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=c.path)},
    )
    return NodeWithScore(node=node, score=hit.score)


class RagRetriever(BaseRetriever):
    """The assistant's retrieval (dense, keyword or hybrid, with its reranker and filters) as a
    LlamaIndex retriever, over the index the assistant is configured with. The question is
    embedded by the assistant's model, never by LlamaIndex's `Settings.embed_model`."""

    def __init__(self, assistant: Assistant, k: int | None = None, where: dict[str, Any] | None = None,
                 **kwargs: Any):
        self.assistant, self.k, self.where = assistant, k, where
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [hit_to_node(hit) for hit in self.assistant.search(query_bundle.query_str, self.k, self.where)]


def ingest_documents(documents: Iterable[Document], assistant: Assistant) -> IngestReport:
    """Chunk, embed and write LlamaIndex Documents into the assistant's index, incrementally.

    A document is keyed by `metadata["file_path"]` (set by SimpleDirectoryReader), else by
    its `doc_id`; give documents without a file a stable doc_id (LlamaIndex's default is a
    random one, which makes every run look new). Documents that share a key (a PDF reader's
    pages) are one source. Metadata used: `title`, `url`, `page_label` (when a number).
    """
    return ingest_texts((_text_document(d) for d in documents), assistant)


def _text_document(document: Document) -> TextDocument:
    meta = document.metadata
    page = str(meta.get("page_label", ""))
    return TextDocument(
        str(meta.get("file_path") or document.doc_id), document.text, meta.get("title"), meta.get("url"),
        int(page) if page.isdigit() else None,
    )
