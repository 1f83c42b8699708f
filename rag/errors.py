"""The errors rag raises, in one place (defined on the ground floor, in `indexes.errors`)."""

from indexes.errors import (
    ConfigError,
    IndexError_,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    LLMError,
    MissingExtraError,
    ModelNotFoundError,
    ParseError,
    RagError,
)

__all__ = [
    "ConfigError",
    "IndexError_",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "LLMError",
    "MissingExtraError",
    "ModelNotFoundError",
    "ParseError",
    "RagError",
]
