"""How long the review queue (`rag corrections suggest`) takes over a realistic answer log.

    python benchmarks/suggest.py --index INDEX [--answers 1000] [--corrections 45]

Works on a copy of INDEX's directory (a FAISS index), so its own corrections and answer log
are untouched. The copy gets `--corrections` corrections (the anchor questions of the
calibration and held-out pairs in evals/datasets/), and an answer log of `--answers`
answers: half the pairs' other questions (paraphrases and near misses, drawn with
repeats), half questions about nothing the corrections answer. Then it times
`Assistant.suggest_links` over the whole log, and, as the baseline in the same process,
the raw embedding of every text the queue embedded, in one batch.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from indexes.corrections import AnswerRecord
from rag import Assistant, Config
from rag.corrections import load_pairs

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True, help="a FAISS index directory (copied, not changed)")
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--corrections", type=int, default=45)
    args = parser.parse_args()

    pairs = load_pairs(DATASETS / "corrections_test.jsonl") + load_pairs(DATASETS / "corrections_calibration.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "idx"
        shutil.copytree(args.index, copy, ignore=shutil.ignore_patterns("corrections.sqlite*", "write.lock"))
        assistant = Assistant(Config(index=str(copy)))
        for question in list(dict.fromkeys(p["a"] for p in pairs))[:args.corrections]:
            assistant.correct(f"A corrected answer to: {question}", question=question, author="benchmark")
        rng = random.Random(0)
        others, logged = [p["b"] for p in pairs], set()
        for i in range(args.answers):
            question = rng.choice(others) if i % 2 else f"Which colour is widget number {i} painted?"
            assistant.corrections.log_answer(AnswerRecord(uuid.uuid4().hex, question, "x", [], "m", "p"))
            logged.add(question)

        embedded: list[str] = []
        embed = assistant.embedder.embed_queries

        def counted(texts):
            embedded.extend(texts)
            return embed(texts)

        assistant.embedder.embed_queries = counted
        started = time.perf_counter()
        suggestions = assistant.suggest_links(limit=args.answers, scan=args.answers)
        took = time.perf_counter() - started
        assistant.embedder.embed_queries = embed
        started = time.perf_counter()
        embed(embedded)
        raw = time.perf_counter() - started
    print(f"{args.answers} logged answers ({len(logged)} distinct questions), {args.corrections} corrections: "
          f"{len(suggestions)} suggestions in {took:.1f} s, {1000 * took / args.answers:.1f} ms per answer")
    print(f"it embedded {len(embedded)} texts; the same texts embedded raw in one batch: {raw:.1f} s "
          f"(the queue takes {took / raw:.2f}x that)")


if __name__ == "__main__":
    main()
