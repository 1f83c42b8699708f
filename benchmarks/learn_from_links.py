"""Does calibrating with the links reviewers made help the matcher on questions it has not seen?

    python benchmarks/learn_from_links.py

The held-out pairs (evals/datasets/corrections_test.jsonl) are split by anchor question into
two halves, twice (seeds 0 and 1). On half A, the review queue's suggestions (as `rag eval`
counts them) are labelled as a reviewer would label them (a paraphrase: same_as, anything
else: not_same_as) and join the calibration pairs, as `rag corrections calibrate
--with-links` does. The default matcher and the one calibrated with the links are then
evaluated on half B: paraphrases / near misses / unrelated pairs overridden.
"""
import random, warnings
warnings.filterwarnings("ignore")
from rag.corrections import Matcher, calibrate, evaluate_matcher, load_pairs, pair_similarity
from pipelines.embed import load_embedder
if __name__ == "__main__":
    e = load_embedder(); sim = pair_similarity(e)
    cal = load_pairs("evals/datasets/corrections_calibration.jsonl")
    test = load_pairs("evals/datasets/corrections_test.jsonl")
    for seed in (0, 1):
        anchors = sorted({p["a"] for p in test}); random.Random(seed).shuffle(anchors)
        half = set(anchors[: len(anchors) // 2])
        a_pairs = [p for p in test if p["a"] in half]; b_pairs = [p for p in test if p["a"] not in half]
        default = Matcher.from_dict(None)
        queue = evaluate_matcher(default, a_pairs, sim, embed=e.embed_queries)
        links = [{"a": r["a"], "b": r["b"], "match": r["match"]} for r in queue["rows"] if r["suggested"]]
        links += [{"a": r["a"], "b": r["b"], "match": False} for r in queue.get("unrelated_rows", []) if r.get("suggested")]
        base = evaluate_matcher(default, b_pairs, sim, embed=e.embed_queries)
        learned = Matcher.from_dict(calibrate(cal + links, sim, embed=e.embed_queries)["matcher"])
        after = evaluate_matcher(learned, b_pairs, sim, embed=e.embed_queries)
        print(f"seed {seed}: {len(links)} links from {len(a_pairs)} pairs of half A ({sum(l['match'] for l in links)} same_as); "
              f"half B: default {base['paraphrase_recall']:.0%} / {base['near_miss_override_rate']:.1%} / {base['unrelated_override_rate']:.1%}, "
              f"calibrated with the links {after['paraphrase_recall']:.0%} / {after['near_miss_override_rate']:.1%} / {after['unrelated_override_rate']:.1%}")
