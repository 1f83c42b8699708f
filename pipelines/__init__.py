"""Ingestion: discover and hash files, parse, chunk, embed on Ray Data, commit to an index."""

from pipelines.chunk import ChunkingConfig
from pipelines.discover import Failure, Plan, plan
from pipelines.embed import Embedder, load_embedder
from pipelines.ingest import IngestOptions, IngestReport, ingest

__all__ = [
    "ChunkingConfig",
    "Embedder",
    "Failure",
    "IngestOptions",
    "IngestReport",
    "Plan",
    "ingest",
    "load_embedder",
    "plan",
]
