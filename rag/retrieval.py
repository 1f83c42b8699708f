"""Retrieval: dense, lexical, or both fused by reciprocal rank fusion; then a reranker."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from indexes import Hit, VectorIndex
from indexes.errors import ConfigError, require
from pipelines.chunk import embed_text
from pipelines.embed import Embedder

Mode = Literal["dense", "lexical", "hybrid"]


@dataclass(frozen=True)
class RetrievalSettings:
    mode: Mode = "hybrid"
    candidates: int = 100  # per retriever, before fusion, diversity and reranking
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    per_source: int = 1  # most chunks from one page (URL without anchor, or path); 0: no limit


def _key(hit: Hit) -> tuple[str, int]:
    return hit.chunk.path, hit.chunk.position


def page_key(hit: Hit) -> str:
    """The page a chunk belongs to: its URL without the anchor, or its file path."""
    return (hit.chunk.url or hit.chunk.path).split("#", 1)[0]


def limit_per_source(hits: list[Hit], per_source: int) -> list[Hit]:
    """Keep at most `per_source` hits of each page, in order (0 keeps everything)."""
    if per_source <= 0:
        return hits
    taken: dict[str, int] = {}
    out = []
    for hit in hits:
        key = page_key(hit)
        if taken.get(key, 0) < per_source:
            taken[key] = taken.get(key, 0) + 1
            out.append(hit)
    return out


def reciprocal_rank_fusion(ranked: list[list[Hit]], weights: list[float], rrf_k: int = 60) -> list[Hit]:
    """Fuse ranked lists: score(d) = sum over lists of weight / (rrf_k + rank of d)."""
    scores: dict[tuple[str, int], float] = {}
    first: dict[tuple[str, int], Hit] = {}
    for hits, weight in zip(ranked, weights):
        for rank, hit in enumerate(hits, 1):
            key = _key(hit)
            scores[key] = scores.get(key, 0.0) + weight / (rrf_k + rank)
            first.setdefault(key, hit)
    order = sorted(scores, key=lambda key: -scores[key])
    return [Hit(first[key].chunk, scores[key]) for key in order]


class Retriever:
    def __init__(self, index: VectorIndex, embedder: Embedder, settings: RetrievalSettings = RetrievalSettings()):
        self.index, self.embedder, self.settings = index, embedder, settings

    def search(self, question: str, k: int, where: dict[str, Any] | None = None,
               vector: np.ndarray | None = None) -> list[Hit]:
        """The k best chunks, at most `per_source` of them from any one page. `vector`: the
        question's embedding, when the caller has it already."""
        s = self.settings
        if vector is None and s.mode != "lexical":
            vector = self.embedder.embed_query(question)
        n = max(k, s.candidates) if s.per_source or s.mode == "hybrid" else k
        if s.mode == "dense":
            hits = self.index.search(vector, n, where)
        elif s.mode == "lexical":
            hits = self.index.lexical_search(question, n, where)
        else:
            dense = self.index.search(vector, n, where)
            lexical = self.index.lexical_search(question, n, where)
            hits = reciprocal_rank_fusion([dense, lexical], [s.dense_weight, s.lexical_weight], s.rrf_k)
        return limit_per_source(hits, s.per_source)[:k]


# --- rerankers ----------------------------------------------------------------------------
class Reranker(ABC):
    """Scores (question, chunk) pairs; the base class sorts and cuts."""

    name: str

    @abstractmethod
    def score(self, question: str, hits: list[Hit]) -> list[float]:
        """A relevance score per hit, higher is better."""

    def warm_up(self) -> None:
        """Load what the reranker needs now rather than on the first question."""

    def rerank(self, question: str, hits: list[Hit], top_n: int) -> list[Hit]:
        if not hits:
            return []
        scores = self.score(question, hits)
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))  # stable on ties
        return [replace(hits[i], score=float(scores[i])) for i in order[:top_n]]


class CrossEncoderReranker(Reranker):
    """A sentence-transformers CrossEncoder from a local directory (nothing is downloaded)."""

    def __init__(self, model: str, batch_size: int = 32):
        self.name = f"cross-encoder:{model}"
        self.model_path, self.batch_size = model, batch_size
        self._model = None
        self._lock = threading.Lock()  # one load, even when many requests arrive at once

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                from pathlib import Path

                from indexes.errors import ModelNotFoundError

                if not Path(self.model_path).is_dir():
                    raise ModelNotFoundError(
                        f"Cross-encoder {self.model_path!r} is not a local directory; rag never downloads "
                        "models. Download it once and set reranker = 'cross-encoder:/path/to/model'."
                    )
                st = require("sentence_transformers", "embed")
                self._model = st.CrossEncoder(self.model_path, local_files_only=True)

    def score(self, question, hits):
        self.warm_up()
        pairs = [(question, embed_text(h.chunk)) for h in hits]
        return [float(s) for s in self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)]


class LLMReranker(Reranker):
    """Asks a chat model (one call, its own prompt) which passages answer the question."""

    def __init__(self, llm, prompt_name: str = "rerank", prompts_dir: str | None = None, max_chars: int = 600):
        self.llm, self.name = llm, f"llm:{llm.name}"
        self.prompt_name, self.prompts_dir, self.max_chars = prompt_name, prompts_dir, max_chars

    def score(self, question, hits):
        import prompts

        prompt = prompts.load(self.prompt_name, self.prompts_dir)
        passages = "\n\n".join(
            f"[{i}] {' > '.join(h.chunk.section)}\n{h.chunk.text[: self.max_chars]}" for i, h in enumerate(hits, 1)
        )
        reply = self.llm.complete(prompt.render(question=question, passages=passages), max_tokens=64).text
        ranking = parse_ranking(reply, len(hits))
        # Ranked passages first, in the model's order; the rest keep their retrieval order.
        return [float(len(hits) * 2 - ranking.index(i + 1)) if i + 1 in ranking else float(len(hits) - i)
                for i in range(len(hits))]


def parse_ranking(reply: str, n: int) -> list[int]:
    """Passage numbers in the order a model listed them, valid and without repeats."""
    seen: list[int] = []
    for token in re.findall(r"\d+", reply):
        number = int(token)
        if 1 <= number <= n and number not in seen:
            seen.append(number)
    return seen


def load_reranker(spec: str | None, llm=None, prompts_dir: str | None = None) -> Reranker | None:
    """'none' | 'cross-encoder:/path/to/model' | 'llm'."""
    if not spec or spec == "none":
        return None
    if spec.startswith("cross-encoder:"):
        return CrossEncoderReranker(spec.split(":", 1)[1])
    if spec == "llm":
        if llm is None:
            raise ConfigError("The llm reranker needs a chat model.")
        return LLMReranker(llm, prompts_dir=prompts_dir)
    raise ConfigError(f"Unknown reranker {spec!r}: use none, llm, or cross-encoder:/path/to/model")
