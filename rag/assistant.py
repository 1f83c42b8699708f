"""`Assistant`: retrieve, build the prompt, one LLM call, an answer with its sources."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Iterator

import prompts
from indexes import Hit, IndexNotFoundError, VectorIndex, open_index
from indexes.errors import LLMError
from pipelines.chunk import ChunkingConfig
from pipelines.embed import Embedder, canonical_name, load_embedder
from pipelines.ingest import IngestOptions, IngestReport, ingest
from rag.config import Config
from rag.llm import ChatModel, Completion, load_chat
from rag.retrieval import Reranker, RetrievalSettings, Retriever, load_reranker
from rag.types import Answer, Source, Usage

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def cited_numbers(text: str, available: int) -> list[int]:
    """The source numbers cited as [n] or [n, m] in `text` that exist, in order of first use."""
    seen: list[int] = []
    for group in _CITATION.findall(text):
        for part in group.split(","):
            n = int(part)
            if 1 <= n <= available and n not in seen:
                seen.append(n)
    return seen


class Assistant:
    """Question answering over an index. Cheap to construct; models load on first use."""

    def __init__(self, config: Config | None = None, *, index: VectorIndex | None = None,
                 embedder: Embedder | None = None, llm: ChatModel | None = None, **overrides: Any):
        self.config = config if config is not None else Config.load(**overrides)
        if config is not None and overrides:
            self.config = self.config.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        self._index, self._embedder, self._llm = index, embedder, llm
        self._retriever: Retriever | None = None
        self._reranker: Reranker | None = None

    # -- parts, built on first use -------------------------------------------------------
    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = open_index(self.config.index)
        return self._index

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.config.embedding_model, batch_size=self.config.embed_batch_size)
        return self._embedder

    @property
    def llm(self) -> ChatModel:
        if self._llm is None:
            self._llm = load_chat(self.config)
        return self._llm

    def warm_up(self) -> "Assistant":
        """Load the embedding model and the LLM now instead of on the first question."""
        self.embedder.warm_up()
        self.llm.warm_up()
        return self

    # -- ingestion -----------------------------------------------------------------------
    def ingest_options(self, progress: bool = False) -> IngestOptions:
        c = self.config
        return IngestOptions(
            embedding_model=c.embedding_model,
            chunking=ChunkingConfig(c.chunk_tokens, c.chunk_overlap),
            extensions=tuple(c.extensions),
            source_url=c.source_url,
            parser=c.parser,
            max_file_mb=c.max_file_mb,
            parse_timeout=c.parse_timeout,
            embed_batch_size=c.embed_batch_size,
            embed_actors=c.embed_actors,
            progress=progress,
        )

    def ingest(self, paths: list[str], progress: bool = False) -> IngestReport:
        """Bring the index up to date with the files under `paths`."""
        return ingest([str(p) for p in paths], self.index, self.ingest_options(progress))

    def status(self) -> dict[str, Any]:
        info = self.index.info()
        manifest = self.index.manifest()
        return {
            "index": self.index.location,
            "files": sum(1 for f in manifest.values() if not f.error),
            "failed_files": sum(1 for f in manifest.values() if f.error),
            "chunks": self.index.count(),
            "embedding_model": info.embedding_model if info else None,
            "dimension": info.dimension if info else None,
            "chunking": info.chunking if info else None,
        }

    # -- questions ---------------------------------------------------------------------
    def search(self, question: str, k: int | None = None, where: dict[str, Any] | None = None) -> list[Hit]:
        """The k chunks closest to the question (no LLM call)."""
        index = self.index
        if index.info() is None:
            raise IndexNotFoundError(
                f"No index at {index.location}. Build one first: rag ingest PATH --index {index.location}"
            )
        index.check_model(canonical_name(self.config.embedding_model), self.embedder.dimension)
        k = k or self.config.top_k
        reranker = self.reranker
        if reranker is None:
            return self.retriever.search(question, k, where)
        candidates = self.retriever.search(question, max(k, self.config.rerank_candidates), where)
        return reranker.rerank(question, candidates, k)

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            c = self.config
            settings = RetrievalSettings(c.retrieval_mode, c.retrieval_candidates, c.rrf_k, c.dense_weight,
                                         c.lexical_weight, c.per_source)
            self._retriever = Retriever(self.index, self.embedder, settings)
        return self._retriever

    @property
    def reranker(self) -> Reranker | None:
        if self._reranker is None and self.config.reranker != "none":
            llm = self.llm if self.config.reranker == "llm" else None
            self._reranker = load_reranker(self.config.reranker, llm, self.config.prompts_dir)
        return self._reranker

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Answer `question` from the index, with cited sources, usage and latency."""
        answer = None
        for item in self.stream(question, k):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(self, question: str, k: int | None = None) -> Iterator[str | Answer]:
        """Yield the answer text as it is generated, then the final `Answer`."""
        started = time.perf_counter()
        latency: dict[str, float] = {}
        hits = self.search(question, k)
        latency["retrieve"] = _ms(started)

        prompt = prompts.load(self.config.prompt, self.config.prompts_dir)
        llm = self.llm
        context_sources = self._fit_context(hits, llm)
        messages = prompt.render(context=_context(context_sources), question=question)

        llm_started = time.perf_counter()
        completion: Completion | None = None
        error: str | None = None
        pieces: list[str] = []
        try:
            for item in llm.stream(messages, max_tokens=self.config.llm_max_tokens,
                                   temperature=self.config.llm_temperature):
                if isinstance(item, Completion):
                    completion = item
                else:
                    pieces.append(item)
                    yield item
        except LLMError as exc:
            error = str(exc)
        latency["llm"] = _ms(llm_started)
        latency["total"] = _ms(started)

        text = completion.text if completion else "".join(pieces)
        numbers = cited_numbers(text, len(context_sources))
        retrieved = [
            Source(s.n, s.path, s.url, s.title, s.section, s.score, s.text, cited=s.n in numbers)
            for s in context_sources
        ]
        cited = [s for s in retrieved if s.cited]
        yield Answer(
            id=uuid.uuid4().hex,
            question=question,
            text=text if error is None else (text or "No answer could be generated; the retrieved sources are listed."),
            sources=cited or retrieved,
            retrieved=retrieved,
            usage=Usage(completion.prompt_tokens, completion.completion_tokens) if completion else Usage(),
            latency_ms=latency,
            model=llm.name,
            prompt=prompt.id,
            error=error,
        )

    def _fit_context(self, hits: list[Hit], llm: ChatModel) -> list[Source]:
        """The hits that fit the context budget, in rank order (at least one)."""
        budget = self.config.context_tokens
        chosen: list[Source] = []
        for hit in hits:
            source = Source.from_hit(len(chosen) + 1, hit)
            cost = llm.count_tokens(_block(source)) + 2
            if chosen and cost > budget:
                break
            budget -= cost
            chosen.append(source)
        return chosen


def _block(source: Source) -> str:
    # No path or URL here: small models copy them into the answer as invented links.
    heading = " > ".join(source.section) or source.title or source.path
    return f'Excerpt [{source.n}] from "{heading}":\n{source.text}'


def _context(sources: list[Source]) -> str:
    return "\n\n".join(_block(s) for s in sources) if sources else "(no excerpts found)"


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
