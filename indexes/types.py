"""The plain types every index backend stores and returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, as stored in an index."""

    path: str
    text: str
    position: int = 0
    title: str | None = None
    section: tuple[str, ...] = ()
    anchor: str | None = None
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["section"] = list(self.section)
        return data


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, with its similarity score (higher is closer)."""

    chunk: Chunk
    score: float

    @property
    def source(self) -> str:
        """Where the chunk can be read: its URL when it has one, else its path."""
        return self.chunk.url or self.chunk.path


@dataclass(frozen=True)
class IndexInfo:
    """What built an index; recorded on first write and checked on every open."""

    embedding_model: str
    dimension: int
    chunking: dict[str, Any] = field(default_factory=dict)
    rag_version: str = ""


@dataclass(frozen=True)
class FileRecord:
    """One ingested file in the index manifest."""

    path: str
    hash: str
    chunks: int
    error: str | None = None  # set when this version of the file could not be ingested
