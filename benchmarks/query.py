"""Query-side cost: retrieval latency for one question (embed, dense search, keyword search,
fusion, per-page limit) at 10k and 100k chunks, against the bare pieces in the same run.

    .venv/bin/python benchmarks/query.py [--texts-from INDEX] [--sizes 10000,100000] [--questions 200]

The vectors are random unit vectors (embedding 100k chunks would take hours here); the
texts are the chunk texts of an existing index (`--texts-from`, e.g. one built from the
Ray docs), repeated to the size asked, so the keyword index has real posting lists; or,
without it, texts drawn from a Zipf vocabulary. The questions are embedded by the real
MiniLM.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = [
    "How do I configure the number of workers?", "What is the default batch size?",
    "How can I retry a failed upload?", "Where are the logs written?", "How do I scale the cluster down?",
    "Which formats can I read from object storage?", "How do I pin a task to a GPU?",
    "What happens when a node dies?", "How do I set an environment variable for every job?",
    "Why is my dataset slow to load?",
]


def build(directory: str, n: int, dim: int, rng, texts: list[str] | None):
    from indexes import Chunk, FileRecord, IndexInfo
    from indexes.faiss_index import FaissIndex

    words = "configure workers batch size retry upload logs scale cluster node dataset gpu task environment job".split()
    words += [f"w{i}" for i in range(20000)]
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()

    def text(i: int) -> str:
        return texts[i % len(texts)] if texts else " ".join(rng.choice(words, 120, p=weights))

    index = FaissIndex(directory)
    with index.writer(IndexInfo("all-MiniLM-L6-v2", dim)) as w:
        for start in range(0, n, 5000):
            size = min(5000, n - start)
            vectors = rng.standard_normal((size, dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            chunks = [Chunk(f"docs/page{(start + i) // 10}.md", text(start + i), (start + i) % 10,
                            url=f"https://x/page{(start + i) // 10}.html") for i in range(size)]
            w.add_chunks(chunks, vectors)
        w.record_files([FileRecord(f"docs/page{j}.md", "h", 10) for j in range(n // 10)])
    return index


def percentiles(values):
    values = sorted(values)
    return statistics.median(values), values[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--texts-from", default=None, help="an index whose chunk texts to reuse")
    args = parser.parse_args()

    from pipelines.embed import load_embedder
    from rag import Assistant, Config

    embedder = load_embedder("all-MiniLM-L6-v2")
    embedder.warm_up()
    questions = [QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" ({i})") for i in range(args.questions)]
    rng = np.random.default_rng(0)
    texts = None
    if args.texts_from:
        from indexes import open_index

        source = open_index(args.texts_from)
        texts = [c.text for c in source.chunks()]
        source.close()
    print(f"{'chunks':>8}  {'what':<44} {'p50 ms':>7} {'p95 ms':>7}")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            index = build(tmp, n, embedder.dimension, rng, texts)
            build_s = time.perf_counter() - started
            rows = []
            timings = {"embed the question (bare model)": [], "FAISS search alone": [], "FTS5 BM25 alone": []}
            for q in questions:
                t = time.perf_counter(); v = embedder.embed_query(q); timings["embed the question (bare model)"].append(time.perf_counter() - t)
                t = time.perf_counter(); index.search(v, 100); timings["FAISS search alone"].append(time.perf_counter() - t)
                t = time.perf_counter(); index.lexical_search(q, 100); timings["FTS5 BM25 alone"].append(time.perf_counter() - t)
            for mode in ("dense", "hybrid"):
                assistant = Assistant(Config(index=tmp, retrieval_mode=mode), index=index, embedder=embedder)
                assistant.search(questions[0])
                name = f"rag retrieval, {mode} (k=5, one chunk per page)"
                timings[name] = []
                for q in questions:
                    t = time.perf_counter(); assistant.search(q, 5); timings[name].append(time.perf_counter() - t)
            for what, values in timings.items():
                p50, p95 = percentiles([1000 * v for v in values])
                rows.append(f"{n:>8}  {what:<44} {p50:>7.1f} {p95:>7.1f}")
            print("\n".join(rows) + f"\n{'':>8}  (index built in {build_s:.0f} s)")
            index.close()


if __name__ == "__main__":
    main()
