"""The ingest pipeline on Ray Data: parse and chunk in parallel tasks, embed in an actor
pool that loads the model once, write everything in one atomic index commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Callable

import numpy as np

from indexes.base import VectorIndex
from indexes.errors import RagError, require
from indexes.types import Chunk, FileRecord, IndexInfo
from pipelines.chunk import ChunkingConfig, chunk_document, embed_text
from pipelines.discover import DEFAULT_EXTENSIONS, Failure, SourceFile, content_of, plan
from pipelines.embed import canonical_name, load_embedder
from pipelines.parse import parse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestOptions:
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_backend: str = "auto"  # auto | torch | onnx | onnx-int8 (pipelines.embed.load_embedder)
    chunking: ChunkingConfig = ChunkingConfig()
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    source_url: str | None = None
    embed_batch_size: int = 32
    embed_rows: int = 512  # chunks per embedding-actor call
    embed_actors: int = 1
    embed_threads: int | None = None
    parser: str = "auto"  # or "unstructured" for every file
    max_file_mb: float = 50.0
    parse_timeout: float = 120.0  # seconds per file
    parse_batch_size: int = 4
    num_cpus: int | None = None


@dataclass
class IngestReport:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[Failure] = field(default_factory=list)
    chunks_written: int = 0
    seconds: float = 0.0
    changed_paths: list[str] = field(default_factory=list)  # replaced or removed: corrections citing them need review
    # new files with the bytes of a file already indexed under another path: (new path, indexed path)
    same_as_indexed: list[tuple[str, str]] = field(default_factory=list)
    rechunked: int = 0  # unchanged files processed again: their chunks were made with other settings
    settings_changed: dict[str, Any] | None = None  # {"before": ..., "now": ...} when they were
    elsewhere: int = 0  # indexed files outside the paths given made with other settings: they keep them
    no_url: int = 0  # new files given no URL although the index was given a template before

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [f.to_dict() for f in self.failed],
            "chunks_written": self.chunks_written,
            "seconds": round(self.seconds, 3),
            **({"same_as_indexed": [list(p) for p in self.same_as_indexed]} if self.same_as_indexed else {}),
            **({"rechunked": self.rechunked, "settings_changed": self.settings_changed, "elsewhere": self.elsewhere}
               if self.settings_changed else {}),
            **({"no_url": self.no_url} if self.no_url else {}),
        }


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def record_hash(digest: str, options: "IngestOptions", page: str) -> str:
    """A manifest entry's hash: the content's, then the settings its chunks were made with: the
    chunk sizes, and the page URL its chunks got from the template ("" for none). A change of
    either is seen per file, and a file chunked again keeps its page URL."""
    return f"{digest};{_fingerprint(options.chunking.to_dict())};{page}"


def _recorded(record: FileRecord) -> tuple[str, str]:
    """(the chunk sizes' fingerprint, the page URL) an entry records (`_upgraded` has read the
    entries of an earlier release as this release writes them)."""
    _, sizes, page = record.hash.split(";", 2)
    return sizes, page


def _stale(record: FileRecord, options: "IngestOptions", page: str | None) -> bool:
    """Whether an unchanged file's chunks were made with other settings than this run's: other
    chunk sizes, or, where this run gives a template (`page`: the page URL it makes for the
    file), another page URL."""
    sizes, recorded_page = _recorded(record)
    return sizes != _fingerprint(options.chunking.to_dict()) or (page is not None and recorded_page != page)


def page_url(template: str | None, relpath: str) -> str:
    """The page URL a template gives a file ("" for no template): `{path}` is the file's path
    relative to the ingest root, without its extension. A chunk's URL adds its anchor."""
    return template.replace("{path}", str(PurePath(relpath).with_suffix(""))) if template else ""


def built_with(options: "IngestOptions") -> dict[str, Any]:
    """The settings that shape an index's chunks, as its IndexInfo records them: the chunk
    sizes, and the URL template when there is one."""
    built = options.chunking.to_dict()
    if options.source_url:
        built["source_url"] = options.source_url
    return built


class ParseTimeout(RagError):
    pass


def time_limit(seconds: float | None, fn, *args):
    """Run fn(*args), raising ParseTimeout after `seconds` (SIGALRM in a main thread;
    elsewhere the work is abandoned to a daemon thread and the file reported)."""
    if not seconds or seconds <= 0:
        return fn(*args)
    message = f"parsing took longer than {seconds:g} s (parse_timeout)"
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def on_alarm(signum, frame):
            raise ParseTimeout(message)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    result: dict = {}

    def target():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ParseTimeout(message)
    if "error" in result:
        raise result["error"]
    return result["value"]


def parse_and_chunk(path: str, abspath: str, options: IngestOptions, page: str) -> tuple[str, list[Chunk]]:
    """One file to its chunks, and the hash of the bytes actually read. `page`: the page URL of
    its chunks ("" for none). Raises RagError/OSError."""
    with open(abspath, "rb") as fh:
        data = fh.read(int(options.max_file_mb * 2**20) + 1)
    if len(data) > options.max_file_mb * 2**20:
        raise RagError(f"file is over the {options.max_file_mb:g} MiB limit (max_file_mb)")
    digest = hashlib.sha256(data).hexdigest()  # hash what we parse, not what discovery saw
    document = time_limit(options.parse_timeout, parse, path, data, options.parser)
    embedder = load_embedder(options.embedding_model)
    chunks = chunk_document(path, document, embedder.count_tokens, embedder.max_tokens, options.chunking)
    if page:
        chunks = [Chunk(**{**c.__dict__, "url": f"{page}#{c.anchor}" if c.anchor else page}) for c in chunks]
    return digest, chunks


_COLUMNS = ("path", "hash", "error", "text", "position", "title", "section", "anchor", "url", "metadata", "embed_text")


def _parse_batch(batch: dict[str, np.ndarray], options: IngestOptions) -> dict[str, np.ndarray]:
    import json

    rows: dict[str, list] = {name: [] for name in _COLUMNS}

    def emit(**values):
        for name in _COLUMNS:
            rows[name].append(values.get(name, ""))

    for path, abspath, page in zip(batch["path"], batch["abspath"], batch["page"]):
        try:
            digest, chunks = parse_and_chunk(str(path), str(abspath), options, str(page))
            if not chunks:
                raise RagError("no text found")
        except (RagError, OSError, ValueError, UnicodeError) as exc:
            emit(path=path, error=str(exc) or type(exc).__name__, position=-1)
            continue
        except Exception as exc:  # a parser bug must not kill a 2,500-file import
            log.exception("unexpected error parsing %s", path)
            emit(path=path, error=f"unexpected {type(exc).__name__}: {exc}", position=-1)
            continue
        for c in chunks:
            emit(path=path, hash=digest, text=c.text, position=c.position, title=c.title or "",
                 section=json.dumps(list(c.section)), anchor=c.anchor or "", url=c.url or "",
                 metadata=json.dumps(c.metadata), embed_text=embed_text(c))
    out = {name: np.asarray(values, dtype=object) for name, values in rows.items()}
    out["position"] = np.asarray(rows["position"], dtype=np.int64)
    return out


class _EmbedActor:
    """Loads the embedding model once per actor; embeds the batches it is given."""

    def __init__(self, model: str, device: str | None, batch_size: int, threads: int | None, backend: str = "auto"):
        self.embedder = load_embedder(model, device, batch_size, threads, backend)
        self.embedder.warm_up()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["error"] == ""
        vectors = np.zeros((len(ok), self.embedder.dimension), dtype=np.float32)
        if ok.any():
            vectors[ok] = self.embedder.embed_documents([str(t) for t in batch["embed_text"][ok]])
        batch["vector"] = vectors
        return batch


def ensure_ray(num_cpus: int | None = None):
    """Start (or join, when RAY_ADDRESS is set) Ray quietly; harmless when already started."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    ray = require("ray", "ray")
    if not ray.is_initialized():
        kwargs: dict[str, Any] = dict(
            include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
            ignore_reinit_error=True,
        )
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], **kwargs)
        else:
            ray.init(num_cpus=num_cpus, **kwargs)
    context = ray.data.DataContext.get_current()
    # rag reports progress itself (ingest's on_progress); Ray's own bars stay off so that
    # the library prints nothing and the CLI owns the terminal.
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return ray


def ingest(paths: list[str], index: VectorIndex, options: IngestOptions = IngestOptions(),
           on_progress: Callable[[str, int, int | None], None] | None = None) -> IngestReport:
    """Bring `index` up to date with the files under `paths`. Atomic: all or nothing.

    `on_progress(stage, done, total)` hears "discover" (files hashed; no total) and "write"
    (files parsed, embedded and written, of those to process).
    """
    say = on_progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    model = canonical_name(options.embedding_model)
    index.check_model(model)  # fail before any work, not after embedding
    manifest = index.manifest()
    todo_plan = plan(paths, manifest, options.extensions, int(options.max_file_mb * 2**20),
                     on_file=lambda n: say("discover", n, None))
    report = IngestReport(
        new=0, changed=0, unchanged=len(todo_plan.unchanged),
        removed=sum(1 for p in todo_plan.removed if not manifest[p].error),
        failed=list(todo_plan.failed),
    )
    # Files are keyed by their path relative to the working directory: the same folder ingested
    # from another directory comes in again under other paths. Say so (a copy may be meant).
    going = set(todo_plan.removed)  # a file renamed in place is not another copy
    indexed = {content_of(r.hash): path for path, r in manifest.items() if not r.error and path not in going}
    report.same_as_indexed = [(f.path, indexed[f.hash]) for f in todo_plan.new
                              if f.hash in indexed and indexed[f.hash] != f.path]
    # A file whose chunks were made with other settings (chunk sizes; the URL template, where
    # this run gives one) is processed again, its bytes unchanged. Each file records its own
    # settings: folders that share an index may use different templates. Not a change of
    # content: corrections citing it are not flagged.
    current = index.info()
    upgraded = _upgraded(index, manifest, current)  # entries of an earlier release, read as this one's
    manifest = {**manifest, **upgraded}
    relpaths = {f.path: _relpath(f, paths) for f in todo_plan.todo + todo_plan.unchanged}
    given = None if options.source_url is None else {p: page_url(options.source_url, r) for p, r in relpaths.items()}
    rechunk = {f.path for f in todo_plan.unchanged
               if _stale(manifest[f.path], options, None if given is None else given[f.path])}
    if rechunk:
        report.settings_changed = {"before": current.chunking if current else {}, "now": built_with(options)}
        outside = going | relpaths.keys()
        report.elsewhere = sum(1 for p, r in manifest.items() if not r.error and p not in outside
                               and _stale(r, options, None))
        todo_plan.changed.extend(f for f in todo_plan.unchanged if f.path in rechunk)
        todo_plan.unchanged = [f for f in todo_plan.unchanged if f.path not in rechunk]
        report.unchanged = len(todo_plan.unchanged)
    if not todo_plan.todo and not todo_plan.removed and not upgraded:
        report.seconds = time.perf_counter() - started
        return report
    # The page URL of each file to process: the template's, where this run gives one; else the
    # one its chunks had (a file chunked again or changed keeps its links), none for a new file.
    pages = given if given is not None else {f.path: _page_of(manifest.get(f.path)) for f in todo_plan.todo}
    built = built_with(options)
    if options.source_url is None and current is not None and current.chunking.get("source_url"):
        built["source_url"] = current.chunking["source_url"]  # the template last given, for the warning above
    changed = {f.path for f in todo_plan.changed}
    counts: dict[str, int] = {}
    hashes: dict[str, str] = {}
    failures: dict[str, str] = {}
    new_info = IndexInfo(model, 0, built, _version())  # dimension: from the vectors
    with index.writer(new_info) as writer:  # lock first: a second writer fails before any work
        writer.remove_files(todo_plan.removed)
        if todo_plan.todo:
            for batch in _run_pipeline(todo_plan.todo, pages, options):
                _write_batch(writer, batch, changed, counts, hashes, failures)
                say("write", len(counts.keys() | failures.keys()), len(todo_plan.todo))
        writer.record_files([FileRecord(p, record_hash(hashes[p], options, pages[p]), n) for p, n in counts.items()])
        writer.record_files([r for p, r in upgraded.items() if p not in counts and p not in going])
        # Remember failures of new files so an unchanged bad file is not parsed again;
        # a changed file that fails keeps its previous, good version.
        writer.record_files([
            FileRecord(f.path, f.hash, 0, failures[f.path])
            for f in todo_plan.todo if f.path in failures and f.path not in changed
        ])
    for f in todo_plan.todo:
        if f.path in failures:
            report.failed.append(Failure(f.path, failures[f.path]))
        elif f.path in rechunk:
            report.rechunked += 1
        elif f.path in changed:
            report.changed += 1
        else:
            report.new += 1
    report.chunks_written = sum(counts.values())
    if given is None and current is not None and current.chunking.get("source_url"):  # said: the index had a template
        report.no_url = sum(1 for f in todo_plan.new if not pages[f.path] and f.path not in failures)
    report.changed_paths = sorted({f.path for f in todo_plan.changed if f.path not in failures and f.path not in rechunk}
                                  | set(todo_plan.removed))
    report.seconds = time.perf_counter() - started
    return report


def _write_batch(writer, batch, changed, counts, hashes, failures) -> None:
    import json

    good = batch["error"] == ""
    for path, error in zip(batch["path"][~good], batch["error"][~good]):
        failures[str(path)] = str(error)
    if not good.any():
        return
    fresh = sorted({str(p) for p in batch["path"][good]} - counts.keys())
    writer.remove_files([p for p in fresh if p in changed])  # replaced only once parsed
    chunks = []
    for i in np.flatnonzero(good):
        path = str(batch["path"][i])
        counts[path] = counts.get(path, 0) + 1
        hashes[path] = str(batch["hash"][i])
        chunks.append(Chunk(
            path=path, text=str(batch["text"][i]), position=int(batch["position"][i]),
            title=str(batch["title"][i]) or None, section=tuple(json.loads(batch["section"][i])),
            anchor=str(batch["anchor"][i]) or None, url=str(batch["url"][i]) or None,
            metadata=json.loads(batch["metadata"][i] or "{}"),
        ))
    writer.add_chunks(chunks, batch["vector"][good])


def page_of(chunk: Chunk | None) -> str:
    """The page URL of a chunk: its URL without its own anchor ("" for none). Only the
    anchor goes: a hash-routed page ("https://x/#/docs/a") keeps its "#"."""
    url = (chunk.url or "") if chunk is not None else ""
    if chunk is not None and chunk.anchor and url.endswith(f"#{chunk.anchor}"):
        return url[: -len(chunk.anchor) - 1]
    return url


def _page_of(record: FileRecord | None) -> str:
    """The page URL a file's chunks have now ("" for none, and for a new file)."""
    return "" if record is None or record.error else _recorded(record)[1]


def _upgraded(index: VectorIndex, manifest: dict[str, FileRecord], info: IndexInfo | None) -> dict[str, FileRecord]:
    """The entries written before entries recorded their settings, as this release writes
    them: the chunk sizes the index recorded, and the page URL one of their chunks has (one
    read each, once: the next write stores them)."""
    sizes = _fingerprint({k: v for k, v in (info.chunking if info else {}).items() if k != "source_url"})
    return {path: FileRecord(path, f"{r.hash};{sizes};{page_of(next(iter(index.chunks(path)), None))}", r.chunks)
            for path, r in manifest.items() if not r.error and ";" not in r.hash}


def _run_pipeline(files: list[SourceFile], pages: dict[str, str], options: IngestOptions):
    ray = ensure_ray(options.num_cpus)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    items = [{"path": f.path, "abspath": f.abspath, "page": pages[f.path]} for f in files]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 64)))
    ds = ds.map_batches(
        _parse_batch, fn_kwargs={"options": options}, batch_size=options.parse_batch_size,
        batch_format="numpy",
    )
    with warnings.catch_warnings():
        # max_restarts=0: a crashed actor fails the (atomic) run instead of being
        # restarted from object-store arguments; Ray files it under deprecated kwargs.
        warnings.simplefilter("ignore")
        ds = _embed_stage(ray, ds, options, gpus)
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def _embed_stage(ray, ds, options: IngestOptions, gpus: int):
    if options.embedding_backend.startswith("onnx"):
        gpus = 0  # the ONNX backends run on CPUs
    return ds.map_batches(
        _EmbedActor,
        fn_constructor_kwargs={
            "model": options.embedding_model,
            "device": "cuda" if gpus else None,
            "batch_size": options.embed_batch_size,
            "threads": options.embed_threads or (None if gpus else os.cpu_count()),
            "backend": options.embedding_backend,
        },
        batch_size=options.embed_rows,  # rows per actor call: ST sorts them by length, less padding
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(options.embed_actors, gpus) if gpus else options.embed_actors),
        num_gpus=1 if gpus else 0,
        max_restarts=0,
    )


def _relpath(f: SourceFile, roots: list[str]) -> str:
    from pathlib import Path

    for root in roots:
        base = Path(root).absolute()
        if base.is_dir():
            try:
                return str(Path(f.abspath).relative_to(base))
            except ValueError:
                continue
    return Path(f.abspath).name


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("rag")
    except Exception:
        return "0"
