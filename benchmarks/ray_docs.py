"""The Ray docs assistant numbers: ingest the corpus with docs.ray.io URLs, check every
URL against the corpus manifest, and evaluate retrieval for the README table.

    .venv/bin/python benchmarks/ray_docs.py --corpus ../shared/corpora/ray-docs \
        --dataset ../shared/evals/ray-docs-dev.jsonl [--index /tmp/ray-docs-index] [--out eval-ray-docs]

Paths can also come from RAG_RAY_DOCS_CORPUS and RAG_RAY_DOCS_DATASET.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SOURCE_URL = "https://docs.ray.io/en/master/{path}.html"


def check_urls(index, manifest_tsv: Path, corpus: Path) -> tuple[int, list[str]]:
    """Every chunk's URL, without its anchor, must be its file's URL in MANIFEST.tsv."""
    expected = {}
    with open(manifest_tsv, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            expected[row["path"]] = row["url"]
    problems, checked = [], 0
    for chunk in index.chunks():
        rel = os.path.relpath(os.path.abspath(chunk.path), corpus.absolute())
        if rel not in expected:
            continue  # files beside the corpus (its README)
        checked += 1
        page = (chunk.url or "").split("#", 1)[0]
        if page != expected[rel]:
            problems.append(f"{rel}: {chunk.url} != {expected[rel]}")
    missing = set(expected) - {os.path.relpath(os.path.abspath(p), corpus.absolute()) for p in index.manifest()}
    problems += [f"{m}: not ingested" for m in sorted(missing)]
    return checked, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=os.environ.get("RAG_RAY_DOCS_CORPUS"), required="RAG_RAY_DOCS_CORPUS" not in os.environ)
    parser.add_argument("--dataset", default=os.environ.get("RAG_RAY_DOCS_DATASET"), required="RAG_RAY_DOCS_DATASET" not in os.environ)
    parser.add_argument("--index", default="/tmp/rag-ray-docs-index")
    parser.add_argument("--out", default="eval-ray-docs")
    parser.add_argument("--sweep", action="append", default=None,
                        help="as rag eval --sweep (default: retrieval_mode=dense,lexical,hybrid and k=3,5,9)")
    args = parser.parse_args()

    from evals.report import write_report
    from evals.retrieval import load_dataset
    from rag import Assistant, Config
    from rag.evaluate import parse_sweeps, run_eval

    corpus = Path(args.corpus)
    config = Config(index=args.index, source_url=SOURCE_URL)
    assistant = Assistant(config)
    report = assistant.ingest([str(corpus)])
    print(f"ingest: {json.dumps(report.to_dict())[:300]}")
    checked, problems = check_urls(assistant.index, corpus / "MANIFEST.tsv", corpus)
    print(f"URLs: {checked} chunks checked against MANIFEST.tsv, {len(problems)} problems")
    for p in problems[:20]:
        print("  " + p)

    items = load_dataset(args.dataset)
    swept = parse_sweeps(args.sweep or ["retrieval_mode=dense,lexical,hybrid", "k=3,5,9"])
    runs = run_eval(config, items, 5, swept, answers=False, out=Path(args.out),
                    on_progress=lambda m: print(m, file=sys.stderr))
    write_report(args.out, runs, swept)
    print(Path(args.out, "report.md").read_text())
    sys.exit(1 if problems or report.failed else 0)


if __name__ == "__main__":
    main()
