"""The errors rag raises, in one place (defined on the ground floor, in `indexes.errors`)."""

from indexes.errors import (
    ConfigError,
    ConflictError,
    IndexError_,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    LLMError,
    MissingExtraError,
    ModelNotFoundError,
    NotFoundError,
    ParseError,
    RagError,
)

__all__ = [
    "ConfigError",
    "ConflictError",
    "IndexError_",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "LLMError",
    "MissingExtraError",
    "ModelNotFoundError",
    "NotFoundError",
    "ParseError",
    "RagError",
]
