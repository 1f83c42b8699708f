"""Storage backends behind one interface, and the plain types they store."""

import re

from indexes.base import IndexWriter, VectorIndex, mask_password
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
    "check_location",
    "is_database",
    "open_index",
]


def is_database(location: str) -> bool:
    """Whether an index location is a PostgreSQL URL (pgvector) rather than a directory (FAISS)."""
    return location.startswith(("postgresql://", "postgres://"))


def check_location(location: str) -> None:
    """Refuse a location that looks like a URL but not a PostgreSQL one ("postgresq://...",
    "postgresql:/...", "postgresql//...", "s3://..."): taken for a directory, a typo would build a local index in
    a folder named after the URL, password and all."""
    if not is_database(location) and (re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", location)
                                      or re.match(r"postgres(ql)?:?/+", location, re.IGNORECASE)):
        raise ConfigError(f"{mask_password(location)} is not an index location: give a directory (FAISS) "
                          "or a postgresql:// URL (pgvector)")


def open_index(location: str, ef_search: int = 100) -> VectorIndex:
    """The backend for a location: a directory (FAISS) or a postgresql:// URL (pgvector;
    `ef_search` sets its HNSW search breadth)."""
    check_location(location)
    if is_database(location):
        from indexes.pgvector_index import PgVectorIndex

        return PgVectorIndex(location, ef_search=ef_search)
    from indexes.faiss_index import FaissIndex

    return FaissIndex(location)
