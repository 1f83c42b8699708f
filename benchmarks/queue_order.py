"""Does the review queue's order put the paraphrases first?

    python benchmarks/queue_order.py [--sets test,test2,test3,test4,test5,test6,test7]

For each held-out set, what `rag eval` counts as the review queue's suggestions from the
set's own pairs (the unrelated pairs aside): the share that are paraphrases, and that share
in the likeliest third, ordered as `rag corrections suggest` orders questions with no thumbs
down (the classifier's probability), and ordered by cosine instead. About a minute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipelines.embed import load_embedder
from rag.corrections import Matcher, embed_once, evaluate_matcher, load_pairs, pair_similarity

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="test,test2,test3,test4,test5,test6,test7")
    args = parser.parse_args()
    embedder = load_embedder()
    embed, matcher = embed_once(embedder.embed_queries), Matcher.from_dict(None)
    print("set: suggestions, paraphrases among them; in the likeliest third by the classifier / by cosine")
    for name in args.sets.split(","):
        rows = [r for r in evaluate_matcher(matcher, load_pairs(DATASETS / f"corrections_{name}.jsonl"),
                                            pair_similarity(embedder), embed=embed)["rows"] if r["suggested"]]
        paraphrase = np.array([bool(r["match"]) for r in rows])
        probability = np.array([matcher.score(r["a"], r["b"], r["similarity"], embed) or 0.0 for r in rows])
        cosine = np.array([r["similarity"] for r in rows])
        third = len(rows) // 3
        top = [paraphrase[np.argsort(-key, kind="stable")[:third]].mean() for key in (probability, cosine)]
        print(f"{name}: {len(rows)}, {paraphrase.mean():.0%}; {top[0]:.0%} / {top[1]:.0%}")


if __name__ == "__main__":
    main()
