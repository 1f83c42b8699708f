"""Ingest documents that are text, not files (what LangChain and LlamaIndex loaders hand
over), through rag's parsers, chunker and embedder into an assistant's index.

Incremental like `rag ingest`: each document is keyed by a stable `path` and hashed; an
unchanged document costs a hash, a changed one has its chunks replaced, and everything is
written in one atomic index commit. No Ray: the texts are already in memory, so they are
chunked and embedded in this process, in batches of `embed_rows` chunks.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import TYPE_CHECKING, Iterable

from indexes.errors import RagError
from indexes.types import Chunk, FileRecord, IndexInfo
from pipelines.chunk import chunk_document, embed_text
from pipelines.discover import Failure, content_of
from pipelines.embed import Embedder, canonical_name
from pipelines.ingest import IngestOptions, IngestReport, page_of, record_hash
from pipelines.parse import PARSERS, Document, parse_text

if TYPE_CHECKING:
    from rag.assistant import Assistant


@dataclass(frozen=True)
class TextDocument:
    """One document as text. Documents that share a `path` are the parts (pages) of one source."""

    path: str  # the key in the index manifest: stable across runs, so a re-ingest is incremental
    text: str
    title: str | None = None
    url: str | None = None
    page: int | None = None


def ingest_texts(documents: Iterable[TextDocument], assistant: Assistant) -> IngestReport:
    """Bring the assistant's index up to date with `documents`. Sources not given are kept
    (this is not a sync of the whole index). Corrections that cite a replaced source are
    flagged for review, as `Assistant.ingest` does."""
    started = time.perf_counter()
    options = assistant.ingest_options()
    embedder, index = assistant.embedder, assistant.index
    model = canonical_name(options.embedding_model)
    index.check_model(model, embedder.dimension)  # fail before any work, not after embedding

    sources: dict[str, list[TextDocument]] = {}
    for document in documents:
        sources.setdefault(document.path, []).append(document)
    manifest = index.manifest()
    report = IngestReport()
    todo: list[tuple[FileRecord, list[Chunk]]] = []
    for path, parts in sources.items():
        digest = _hash(parts)
        known = manifest.get(path)
        if known is not None and content_of(known.hash) == digest and not known.error:
            report.unchanged += 1
            continue
        try:
            chunks = _chunks(path, parts, embedder, options)
        except (RagError, ValueError) as exc:
            report.failed.append(Failure(path, str(exc) or type(exc).__name__))
            continue
        if known is not None and not known.error:
            report.changed += 1
            report.changed_paths.append(path)
        else:
            report.new += 1
        page = page_of(chunks[0]) if chunks else ""
        todo.append((FileRecord(path, record_hash(digest, options, page), len(chunks)), chunks))

    if todo:
        from rag import __version__

        chunking = options.chunking.to_dict()
        current = index.info()
        if current is not None and current.chunking.get("source_url"):  # rag ingest's template, kept
            chunking["source_url"] = current.chunking["source_url"]
        info = IndexInfo(model, embedder.dimension, chunking, __version__)
        with index.writer(info) as writer:
            writer.remove_files([record.path for record, _ in todo])
            pending = [chunk for _, chunks in todo for chunk in chunks]
            for start in range(0, len(pending), options.embed_rows):
                batch = pending[start : start + options.embed_rows]
                writer.add_chunks(batch, embedder.embed_documents([embed_text(c) for c in batch]))
            writer.record_files([record for record, _ in todo])
        report.chunks_written = len(pending)
    if report.changed_paths:
        assistant.corrections.flag_for_review(report.changed_paths, "a cited document changed")
    report.seconds = time.perf_counter() - started
    return report


def _hash(parts: list[TextDocument]) -> str:
    """What decides "changed": the text and everything stored with it, in order."""
    data = json.dumps([[p.text, p.title, p.url, p.page] for p in parts], ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def _chunks(path: str, parts: list[TextDocument], embedder: Embedder, options: IngestOptions) -> list[Chunk]:
    """One source's parts to chunks: Markdown, reStructuredText and HTML (by the path's
    extension) keep their section titles; any other text, or text without that markup, is
    one section."""
    parser = PARSERS.get(PurePath(path).suffix.lower(), parse_text)
    default_title = parts[0].title or PurePath(path).stem or path
    sections = []
    title = parts[0].title
    for part in parts:
        parsed = parser(part.text, part.title or default_title)
        if not parsed.sections:  # e.g. text extracted from HTML, given under an .html name
            parsed = parse_text(part.text, part.title or default_title)
        title = title or parsed.title
        sections += [replace(s, page=part.page) if part.page is not None else s for s in parsed.sections]
    chunks = chunk_document(path, Document(title or default_title, sections), embedder.count_tokens,
                            embedder.max_tokens, options.chunking, url=parts[0].url)
    if not chunks:
        raise RagError("no text found")
    return chunks
