"""Embedding throughput and agreement of the backends: PyTorch fp32 (sentence-transformers),
ONNX Runtime fp32 and ONNX Runtime int8, on the same chunks, in this process.

    .venv/bin/python benchmarks/embed_backends.py --index INDEX_DIR [--limit 256] [--rounds 3]
    .venv/bin/python benchmarks/embed_backends.py --corpus DOCS_DIR [--limit 256]

The chunks come from an index built earlier (a FAISS directory: the texts rag embedded,
heading included) or are made from a corpus the way `rag ingest` makes them. Each round
embeds all of them with every backend in turn, so a busy machine slows all of them alike;
the table gives the median chunks/s over the rounds and the median of each round's ratio
to PyTorch fp32. Agreement: cosine of each backend's vectors to PyTorch's, and how many of
each chunk's 10 nearest neighbours (among the sampled chunks) stay the same.
The ONNX export is made (or reused) from the bundled weights before timing starts.

    .venv/bin/python benchmarks/embed_backends.py --index INDEX_DIR --reembed NEW_DIR --backend onnx-int8

writes a new FAISS index at NEW_DIR with the very chunks and manifest of INDEX_DIR, their
vectors computed by the given backend: evaluate both with `rag eval ... --no-llm` to see
what a backend changes in retrieval, chunking held fixed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BACKENDS = ("torch", "onnx", "onnx-int8")


def texts_from_index(directory: str) -> list[str]:
    from indexes.faiss_index import FaissIndex
    from pipelines.chunk import embed_text

    return [embed_text(c) for c in FaissIndex(directory).chunks()]


def texts_from_corpus(corpus: str, embedder) -> list[str]:
    from pipelines.chunk import chunk_document, embed_text
    from pipelines.discover import discover
    from pipelines.parse import parse

    files, _ = discover([corpus])
    texts = []
    for f in sorted(files, key=lambda f: f.path):
        try:
            doc = parse(f.path, Path(f.abspath).read_bytes())
        except Exception:
            continue
        texts += [embed_text(c) for c in chunk_document(f.path, doc, embedder.count_tokens, embedder.max_tokens)]
    return texts


def reembed(source: str, target: str, backend: str, batch_size: int, threads: int | None) -> None:
    from dataclasses import replace

    from indexes.faiss_index import FaissIndex
    from pipelines.chunk import embed_text
    from pipelines.embed import load_embedder

    old, new = FaissIndex(source), FaissIndex(target)
    if new.exists:
        sys.exit(f"{target} holds an index already")
    info = old.info()
    embedder = load_embedder(info.embedding_model, batch_size=batch_size, threads=threads, backend=backend)
    embedder.warm_up()
    chunks = list(old.chunks())
    started = time.perf_counter()
    vectors = embedder.embed_documents([embed_text(c) for c in chunks])
    seconds = time.perf_counter() - started
    with new.writer(replace(info, rag_version=f"{info.rag_version} re-embedded by {embedder.backend}")) as writer:
        writer.add_chunks(chunks, vectors)
        writer.record_files(list(old.manifest().values()))
    print(f"{len(chunks)} chunks re-embedded by {embedder.backend} in {seconds:.0f} s "
          f"({len(chunks) / seconds:.1f} chunks/s) into {target}")


def neighbours(vectors, k: int = 10):
    import numpy as np

    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--index", help="a FAISS index directory to take chunk texts from")
    source.add_argument("--corpus", help="a folder of documents to chunk")
    parser.add_argument("--limit", type=int, default=256, help="chunks sampled (seed 0); 0: all")
    parser.add_argument("--min-tokens", type=int, default=0, help="only chunks at least this long (254: full)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="texts per batch (torch, onnx fp32)")
    parser.add_argument("--threads", type=int, default=None, help="default: the CPUs available")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--reembed", metavar="NEW_DIR", help="write INDEX's chunks, re-embedded, to a new index")
    parser.add_argument("--backend", default="onnx-int8", choices=BACKENDS, help="the backend for --reembed")
    args = parser.parse_args()
    if args.reembed:
        if not args.index:
            parser.error("--reembed needs --index")
        reembed(args.index, args.reembed, args.backend, args.batch_size, args.threads)
        return

    import numpy as np

    from pipelines.embed import load_embedder
    from pipelines.onnx_embed import available_cpus

    threads = args.threads or available_cpus()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if backends[0] != "torch":
        backends.insert(0, "torch")
    embedders = {b: load_embedder(backend=b, batch_size=args.batch_size, threads=threads) for b in backends}
    for embedder in embedders.values():
        embedder.warm_up()

    texts = texts_from_index(args.index) if args.index else texts_from_corpus(args.corpus, embedders["torch"])
    if args.min_tokens:
        counter = embedders["torch"]
        texts = [t for t in texts if counter.count_tokens(t) >= args.min_tokens]
    if args.limit and len(texts) > args.limit:
        texts = random.Random(0).sample(texts, args.limit)
    tokens = [min(embedders["torch"].count_tokens(t), embedders["torch"].max_tokens) for t in texts]
    for embedder in embedders.values():
        embedder.embed_documents(texts[:16])

    rates: dict[str, list[float]] = {b: [] for b in backends}
    ratios: dict[str, list[float]] = {b: [] for b in backends}
    vectors = {}
    for _ in range(args.rounds):
        for b in backends:
            started = time.perf_counter()
            vectors[b] = embedders[b].embed_documents(texts)
            rates[b].append(len(texts) / (time.perf_counter() - started))
        for b in backends:
            ratios[b].append(rates[b][-1] / rates["torch"][-1])

    reference, ref_nn = vectors["torch"], neighbours(vectors["torch"])
    print(f"{len(texts)} chunks, {statistics.mean(tokens):.0f} tokens on average (max {max(tokens)}), "
          f"{threads} threads, {args.rounds} rounds, batch {args.batch_size} (int8: 1)")
    print("| backend | chunks/s (median) | ratio to torch fp32 | per round | cosine to torch mean / min | same 10-NN |")
    print("|---|---|---|---|---|---|")
    for b in backends:
        cos = np.sum(vectors[b] * reference, axis=1)
        nn = neighbours(vectors[b])
        same = np.mean([len(set(a) & set(r)) / len(r) for a, r in zip(nn, ref_nn)])
        print(f"| {embedders[b].backend} | {statistics.median(rates[b]):.1f} | {statistics.median(ratios[b]):.2f} | "
              f"{', '.join(f'{r:.1f}' for r in rates[b])} | {cos.mean():.4f} / {cos.min():.4f} | {same:.3f} |")


if __name__ == "__main__":
    main()
