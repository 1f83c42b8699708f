"""Split parsed sections into chunks sized in the embedder's tokens.

Chunks never straddle sections; within a section langchain's recursive splitter cuts at
paragraphs, then lines, then words, with overlap. Each chunk is embedded with its title
path in front, so the title counts against the model's maximum sequence length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from indexes.errors import require
from indexes.types import Chunk
from pipelines.parse import Document


@dataclass(frozen=True)
class ChunkingConfig:
    chunk_tokens: int = 256
    chunk_overlap: int = 32

    def to_dict(self) -> dict:
        return {"chunk_tokens": self.chunk_tokens, "chunk_overlap": self.chunk_overlap, "splitter": "recursive-tokens"}


def heading(chunk: Chunk) -> str:
    """The line put in front of a chunk's text when it is embedded."""
    return " > ".join(chunk.section)


def embed_text(chunk: Chunk) -> str:
    head = heading(chunk)
    return f"{head}\n{chunk.text}" if head else chunk.text


def chunk_document(
    path: str,
    document: Document,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    config: ChunkingConfig = ChunkingConfig(),
    url: str | None = None,
) -> list[Chunk]:
    splitters = require("langchain_text_splitters", "embed")
    budget_total = max(16, min(config.chunk_tokens, max_tokens))
    chunks: list[Chunk] = []
    for section in document.sections:
        head_tokens = count_tokens(" > ".join(section.titles)) + 1
        budget = max(8, budget_total - head_tokens)
        overlap = min(config.chunk_overlap, budget // 4)
        splitter = splitters.RecursiveCharacterTextSplitter(
            chunk_size=budget, chunk_overlap=overlap, length_function=count_tokens,
            keep_separator=True, strip_whitespace=True,
        )
        pieces = [p for raw in splitter.split_text(section.text) for p in _fit(raw, budget, count_tokens)]
        for piece in pieces:
            if not piece.strip():
                continue
            chunks.append(
                Chunk(
                    path=path,
                    text=piece,
                    position=len(chunks),
                    title=document.title,
                    section=section.titles,
                    anchor=section.anchor,
                    url=url,
                    metadata={"page": section.page} if section.page is not None else {},
                )
            )
    return chunks


def _fit(piece: str, budget: int, count_tokens: Callable[[str], int]) -> list[str]:
    """Cut a piece the splitter could not bring under budget (one enormous word) in halves."""
    if count_tokens(piece) <= budget or len(piece) < 2:
        return [piece]
    middle = len(piece) // 2
    return _fit(piece[:middle], budget, count_tokens) + _fit(piece[middle:], budget, count_tokens)
