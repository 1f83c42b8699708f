"""Storage backends behind one interface, and the plain types they store."""

from indexes.base import IndexWriter, VectorIndex
from indexes.errors import (
    ConfigError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    RagError,
)
from indexes.types import Chunk, FileRecord, Hit, IndexInfo

__all__ = [
    "Chunk",
    "ConfigError",
    "FileRecord",
    "Hit",
    "IndexInfo",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexWriter",
    "RagError",
    "VectorIndex",
    "open_index",
]


def open_index(location: str, ef_search: int = 100) -> VectorIndex:
    """The backend for a location: a directory (FAISS) or a postgresql:// URL (pgvector;
    `ef_search` sets its HNSW search breadth)."""
    if location.startswith(("postgresql://", "postgres://")):
        from indexes.pgvector_index import PgVectorIndex

        return PgVectorIndex(location, ef_search=ef_search)
    from indexes.faiss_index import FaissIndex

    return FaissIndex(location)
