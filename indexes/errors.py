"""The one error hierarchy of rag. Every message says what went wrong and what to do."""


class RagError(Exception):
    """Base of every error rag raises on purpose."""


class ConfigError(RagError):
    """A setting is missing or invalid."""


class ConflictError(RagError):
    """Another writer decided otherwise at the same moment, and their decision stands."""


class NotFoundError(RagError, LookupError):
    """A logged answer or a correction named by id is not there. `public` says so without
    naming where it looked (the index's location is for the operator, not for HTTP clients)."""

    def __init__(self, message: str, public: str):
        super().__init__(message)
        self.public = public

    def __reduce__(self):  # pickles (across Ray, say) with both messages
        return type(self), (str(self), self.public)


class MissingExtraError(RagError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"{package} is not installed. Install it with: pip install 'rag[{extra}]'"
        )


def require(module: str, extra: str):
    """Import `module` or raise MissingExtraError naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc


class IndexError_(RagError):
    """Base for index problems (named with a trailing underscore to keep the builtin)."""


class IndexNotFoundError(IndexError_):
    """No index exists at the given location."""


class IndexMismatchError(IndexError_):
    """The index was built with another embedding model or dimension."""


class IndexLockedError(IndexError_):
    """Another process is writing to the index."""


class PermissionDeniedError(IndexError_):
    """The database refused the role a statement (it may only read, say)."""


class IndexWriteError(IndexError_):
    """The index could not be written (disk full, read-only, database gone); it is unchanged."""


def storage_problem(exc: BaseException) -> str | None:
    """A plain description of a storage failure (full, read-only, no permission), else None."""
    import errno
    import sqlite3

    if isinstance(exc, OSError):
        return {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied"}.get(exc.errno)
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        if "disk is full" in message:
            return "the disk is full"
        if "readonly" in message or "read-only" in message:
            return "the file system is read-only"
        if "disk i/o error" in message:
            return "a disk I/O error (full, failing, or removed)"
    return None


class ModelNotFoundError(RagError):
    """A model is not available locally (nothing is downloaded at run time)."""


class LLMError(RagError):
    """The language model could not produce an answer."""


class ParseError(RagError):
    """A file could not be parsed into text."""
