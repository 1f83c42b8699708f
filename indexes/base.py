"""The one interface every index backend implements.

A backend implements `info`, `manifest`, `search_many`, `count` and `writer`; the base
class derives single-query search and the model check.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from indexes.errors import IndexMismatchError
from indexes.types import Chunk, FileRecord, Hit, IndexInfo


class IndexWriter(ABC):
    """Changes made inside one `with index.writer(info) as w:` block commit together."""

    @abstractmethod
    def remove_files(self, paths: list[str]) -> None:
        """Delete these files' chunks and manifest entries."""

    @abstractmethod
    def add_chunks(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Store chunks with their (normalized float32) vectors, one row each."""

    @abstractmethod
    def record_files(self, files: list[FileRecord]) -> None:
        """Record files as ingested at the given content hash, or as failed (`error` set)."""


def mask_password(url: str) -> str:
    """`url` with the password in it, if any, as *** (never print or log a secret): in the
    authority (`user:pw@`, after one or two slashes) or as a `password=` (or `sslpassword=`)
    parameter."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*:?/{1,2}[^:@/?#]*):[^@/?#]*@", r"\1:***@", url)  # ":" may be mistyped away
    return re.sub(r"([?&](?:ssl)?password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


class VectorIndex(ABC):
    """A store of chunks, their vectors and the manifest of the files they came from."""

    location: str

    @property
    def display_location(self) -> str:
        """The location as it may be printed or logged: a password in it masked."""
        return mask_password(self.location)

    @abstractmethod
    def info(self) -> IndexInfo | None:
        """What built this index, or None for an index never written to."""

    @abstractmethod
    def manifest(self) -> dict[str, FileRecord]:
        """The ingested files, by path."""

    @abstractmethod
    def count(self) -> int:
        """Number of chunks stored."""

    @abstractmethod
    def search_many(
        self, vectors: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[list[Hit]]:
        """Top-k hits for each query vector, best first."""

    @abstractmethod
    def lexical_search_many(
        self, queries: list[str], k: int, where: dict[str, Any] | None = None
    ) -> list[list[Hit]]:
        """Top-k keyword (BM25 / full-text) hits for each query, best first; higher score is better."""

    @abstractmethod
    def writer(self, info: IndexInfo) -> AbstractContextManager[IndexWriter]:
        """An exclusive, atomic write session; raises IndexLockedError if one is open."""

    def close(self) -> None:
        """Release files and connections; using the index again reopens them."""

    def search(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        return self.search_many(np.asarray(vector, dtype=np.float32).reshape(1, -1), k, where)[0]

    def lexical_search(self, query: str, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        return self.lexical_search_many([query], k, where)[0]

    def check_model(self, embedding_model: str, dimension: int | None = None) -> None:
        """Refuse an embedder other than the one that built the index."""
        info = self.info()
        if info is None:
            return
        if info.embedding_model != embedding_model or dimension not in (None, info.dimension):
            configured = f"{embedding_model!r}" + (f" (dimension {dimension})" if dimension else "")
            raise IndexMismatchError(
                f"The index at {self.display_location} was built with embedding model "
                f"{info.embedding_model!r} (dimension {info.dimension}), but the configured "
                f"model is {configured}. Set "
                f"embedding_model = {info.embedding_model!r} (RAG_EMBEDDING_MODEL) to use this "
                f"index, or ingest into a new index with --index PATH."
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


CHUNK_FIELDS = ("title", "url", "anchor")  # a chunk's own fields a filter can name, besides path and section


def matches(chunk: Chunk, where: dict[str, Any] | None) -> bool:
    """Metadata filter shared by backends that filter in Python.

    Keys: `path` (a glob), `section` (a title anywhere in the section path), `title`,
    `url` and `anchor` (equality), or any metadata key (equality).
    """
    if not where:
        return True
    from fnmatch import fnmatchcase

    for key, wanted in where.items():
        if key == "path":
            if not fnmatchcase(chunk.path, str(wanted)):
                return False
        elif key == "section":
            if wanted not in chunk.section:
                return False
        elif key in CHUNK_FIELDS:  # text, compared as text (as SQL does); None: the chunk has none
            value = getattr(chunk, key)
            if (value is None) != (wanted is None) or (wanted is not None and value != str(wanted)):
                return False
        elif chunk.metadata.get(key) != wanted:
            return False
    return True
