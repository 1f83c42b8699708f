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
    "is_database",
    "open_index",
]


def is_database(location: str) -> bool:
    """Whether an index location is a PostgreSQL URL (pgvector) rather than a directory (FAISS)."""
    return location.startswith(("postgresql://", "postgres://"))


def open_index(location: str, ef_search: int = 100) -> VectorIndex:
    """The backend for a location: a directory (FAISS) or a postgresql:// URL (pgvector;
    `ef_search` sets its HNSW search breadth)."""
    if is_database(location):
        from indexes.pgvector_index import PgVectorIndex

        return PgVectorIndex(location, ef_search=ef_search)
    from indexes.faiss_index import FaissIndex

    return FaissIndex(location)
