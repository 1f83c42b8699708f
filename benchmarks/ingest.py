"""End-to-end ingest throughput against a raw SentenceTransformer.encode of the same chunks.

    .venv/bin/python benchmarks/ingest.py CORPUS [--limit N] [--batch-size 32]

Both run in this process on the same machine: first the baseline (the chunks that rag
would make, encoded by the bare model, no Ray, no parsing, no writes), then a full
`rag` ingest into a fresh index (discover, hash, parse, chunk and embed on Ray Data,
commit), then a re-ingest of the unchanged corpus. Prints chunks/s for both, their
ratio, and the re-ingest time as a share of the first ingest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="ingest only the first N files")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from indexes.faiss_index import FaissIndex
    from pipelines import IngestOptions, ingest
    from pipelines.chunk import chunk_document, embed_text
    from pipelines.discover import discover
    from pipelines.embed import load_embedder, resolve_model_path
    from pipelines.parse import parse

    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    files, _ = discover([str(args.corpus)])
    files = sorted(files, key=lambda f: f.path)[: args.limit]
    corpus = work / "corpus"
    for f in files:  # a copy, so --limit works and the corpus is never touched
        target = corpus / Path(f.abspath).relative_to(args.corpus.absolute())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f.abspath, target)

    embedder = load_embedder("all-MiniLM-L6-v2")
    texts = []
    for f in files:
        try:
            doc = parse(f.path, Path(f.abspath).read_bytes())
        except Exception:
            continue
        texts += [embed_text(c) for c in chunk_document(f.path, doc, embedder.count_tokens, embedder.max_tokens)]

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), local_files_only=True)
    model.encode(texts[:32], batch_size=args.batch_size)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
    raw_seconds = time.perf_counter() - started
    del model

    index = FaissIndex(work / "index")
    options = IngestOptions(embed_batch_size=args.batch_size)
    started = time.perf_counter()
    report = ingest([str(corpus)], index, options)
    rag_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest([str(corpus)], index, options)
    re_seconds = time.perf_counter() - started

    raw_rate = len(texts) / raw_seconds
    rag_rate = report.chunks_written / rag_seconds
    print(f"corpus: {args.corpus} ({len(files)} files, {len(texts)} chunks; {len(report.failed)} failed)")
    print(f"raw SentenceTransformer.encode : {raw_rate:7.1f} chunks/s ({raw_seconds:.1f} s)")
    print(f"rag ingest end to end          : {rag_rate:7.1f} chunks/s ({rag_seconds:.1f} s, Ray start included)")
    print(f"ratio rag / raw encode         : {rag_rate / raw_rate:7.2f}")
    print(f"re-ingest unchanged            : {re_seconds:.2f} s = {100 * re_seconds / rag_seconds:.1f}% of the first ingest"
          f" ({again.unchanged} unchanged, {again.chunks_written} chunks written)")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
