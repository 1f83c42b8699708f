"""Find the files to ingest, hash them, and tell new, changed, unchanged and removed apart."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from indexes.types import FileRecord

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS = (".md", ".markdown", ".rst", ".txt", ".html", ".htm", ".pdf", ".docx", ".pptx", ".ipynb")
SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".rag", ".tox"}


@dataclass(frozen=True)
class SourceFile:
    path: str  # the key in the manifest: relative to the working directory when under it
    abspath: str
    hash: str
    size: int


@dataclass(frozen=True)
class Failure:
    path: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "error": self.error}


@dataclass
class Plan:
    new: list[SourceFile] = field(default_factory=list)
    changed: list[SourceFile] = field(default_factory=list)
    unchanged: list[SourceFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)

    @property
    def todo(self) -> list[SourceFile]:
        return self.new + self.changed


def display_path(path: Path) -> str:
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _walk(root: Path, extensions: tuple[str, ...], failed: list[Failure]):
    def on_error(err: OSError):
        failed.append(Failure(display_path(Path(err.filename or root)), f"cannot read: {err.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in extensions:
                yield Path(dirpath) / name


def _odd_name(path: Path) -> str | None:
    """Why a file name cannot be stored, or None. (Names must survive SQL, JSON and terminals.)"""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8; rename the file"
    if any(ch in name for ch in "\n\r\0"):
        return "file name contains a line break; rename the file"
    return None


def _safe(path: Path) -> str:
    return display_path(path).encode("utf-8", "backslashreplace").decode("utf-8").replace("\n", "\\n").replace("\r", "\\r")


def discover(paths: list[str], extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
             max_bytes: int | None = None, on_file=None) -> tuple[list[SourceFile], list[Failure]]:
    """Every file under `paths` with a supported extension, hashed; unreadable, oversized
    and oddly named ones as failures."""
    extensions = tuple(e.lower() for e in extensions)
    found: dict[str, SourceFile] = {}
    failed: list[Failure] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            candidates = _walk(root, extensions, failed)
        elif root.exists():
            if root.suffix.lower() not in extensions:
                failed.append(Failure(display_path(root), f"unsupported file type {root.suffix or '(none)'}; supported: {', '.join(extensions)}"))
                continue
            candidates = iter([root])
        else:
            failed.append(Failure(str(given), MISSING))
            continue
        for candidate in candidates:
            if (odd := _odd_name(candidate)) is not None:
                failed.append(Failure(_safe(candidate), odd))
                continue
            key = display_path(candidate)
            if key in found:
                continue
            try:
                if not candidate.is_file():
                    failed.append(Failure(key, "not a regular file (broken link or special file)"))
                    continue
                size = candidate.stat().st_size
                if max_bytes is not None and size > max_bytes:
                    failed.append(Failure(key, f"file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:g} MiB limit (max_file_mb)"))
                    continue
                found[key] = SourceFile(key, str(candidate.absolute()), file_hash(candidate), size)
                if on_file is not None:
                    on_file(len(found))
            except OSError as exc:
                failed.append(Failure(key, f"cannot read: {exc.strerror or exc}"))
    return list(found.values()), failed


def _under(path: str, roots: list[str]) -> bool:
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep) or root in ("", "."):
            return True
    return False


MISSING = "no such file or directory"


def content_of(record_hash: str) -> str:
    """The content hash in a manifest entry's hash (which may add the settings after a ";")."""
    return record_hash.split(";", 1)[0]


def retried(error: str) -> bool:
    """Whether a file that failed this way is tried again on the next run although its bytes
    are the same: a parse that ran out of time may finish on a quieter machine or with a
    larger `parse_timeout`; a corrupt file stays corrupt."""
    return error.endswith("(parse_timeout)")


def plan(paths: list[str], manifest: dict[str, FileRecord], extensions: tuple[str, ...] = DEFAULT_EXTENSIONS,
         max_bytes: int | None = None, on_file=None) -> Plan:
    """Diff the files under `paths` against the index manifest.

    A manifest entry under one of `paths` that is no longer there is removed; entries
    outside `paths` are left alone, so several folders can share one index. A file that
    now fails to read keeps its old chunks.
    """
    files, failed = discover(paths, extensions, max_bytes, on_file)
    result = Plan(failed=failed)
    for f in files:
        old = manifest.get(f.path)
        if old is not None and old.error and content_of(old.hash) == f.hash and not retried(old.error):
            result.failed.append(Failure(f.path, old.error))  # same bytes, same failure
        elif old is None or old.error:
            result.new.append(f)
        elif content_of(old.hash) != f.hash:
            result.changed.append(f)
        else:
            result.unchanged.append(f)
    # a file given by name that is gone but indexed is removed, not a failure
    gone = {display_path(Path(p)) for p in paths if not os.path.lexists(p)} & manifest.keys()
    result.failed = [f for f in result.failed if not (f.error == MISSING and display_path(Path(f.path)) in gone)]
    seen = {f.path for f in files} | {f.path for f in result.failed}
    roots = [display_path(Path(p)) for p in paths if Path(p).is_dir()]
    roots = ["" if r == "." else r for r in roots]
    explicit = {display_path(Path(p)) for p in paths if not Path(p).is_dir()}
    for path in sorted(manifest):
        if path in seen:
            continue
        if _under(path, roots) or path in explicit:
            result.removed.append(path)
    return result
