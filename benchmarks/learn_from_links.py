"""Does calibrating with the links reviewers made help the matcher on questions it has not seen?

    python benchmarks/learn_from_links.py

The held-out pairs (evals/datasets/corrections_test.jsonl) are split by anchor question into
two halves, twice (seeds 0 and 1). On half A, the pairs the review queue suggests (as `rag
eval` counts them) are labelled as a reviewer would label them (a paraphrase: same_as, a
near miss: not_same_as) and join the calibration pairs, as `rag corrections calibrate
--with-links` does. The default matcher and the one calibrated with the links are then
evaluated on half B: paraphrases / near misses / unrelated pairs overridden.
"""

from __future__ import annotations

import random
from pathlib import Path

from pipelines.embed import load_embedder
from rag.corrections import Matcher, calibrate, evaluate_matcher, load_pairs, pair_similarity

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def rates(result: dict) -> str:
    return (f"{result['paraphrase_recall']:.0%} / {result['near_miss_override_rate']:.1%} / "
            f"{result['unrelated_override_rate']:.1%}")


def main() -> None:
    embedder = load_embedder()
    similarity, embed = pair_similarity(embedder), embedder.embed_queries
    calibration = load_pairs(DATASETS / "corrections_calibration.jsonl")
    held_out = load_pairs(DATASETS / "corrections_test.jsonl")
    default = Matcher.from_dict(None)
    for seed in (0, 1):
        anchors = sorted({p["a"] for p in held_out})
        random.Random(seed).shuffle(anchors)
        half = set(anchors[: len(anchors) // 2])
        reviewed = [p for p in held_out if p["a"] in half]
        unseen = [p for p in held_out if p["a"] not in half]
        queue = evaluate_matcher(default, reviewed, similarity, embed=embed)
        links = [{"a": r["a"], "b": r["b"], "match": r["match"]} for r in queue["rows"] if r["suggested"]]
        learned = Matcher.from_dict(calibrate(calibration + links, similarity, embed=embed)["matcher"])
        print(f"seed {seed}: {len(links)} links ({sum(link['match'] for link in links)} same_as) from "
              f"{len(reviewed)} pairs; on the other {len(unseen)} pairs: default "
              f"{rates(evaluate_matcher(default, unseen, similarity, embed=embed))}, calibrated with the links "
              f"{rates(evaluate_matcher(learned, unseen, similarity, embed=embed))}")


if __name__ == "__main__":
    main()
