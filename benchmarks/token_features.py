"""Does aligning the two questions' contextual token vectors tell paraphrases from near misses?

    python benchmarks/token_features.py [--extra tok_min,tok_f] [--base]

BERTScore-like features from the bundled MiniLM's last layer (its token vectors before
pooling): each content word piece of one question (not a stopword, not punctuation) is
matched to its most similar piece of the other. A near miss that swaps a slot should leave
one piece unmatched ("batch" against "cpus"); a paraphrase that swaps a synonym, in the same
context, should not ("convert" against "turn"). Features, both ways together:

- tok_min: the least matched piece's similarity; tok_min2: the mean of the two least;
- tok_mina, tok_minb: the same for each question on its own;
- tok_f: the harmonic mean of the two questions' mean matches (BERTScore's F);
- tok_low: the share of pieces matched below 0.6.

`--extra` adds them to the matcher's features; `rag.corrections.calibrate` then fits both
classifiers and the thresholds on the calibration pairs, as `rag corrections calibrate`
does (at most 2% of near misses, 1% of unrelated pairs), and each held-out set is measured
with `evaluate_matcher`, as `rag eval` does. `--base`: the matcher's features alone, the
same way (the default matcher's figures). About a minute on two cores.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

import rag.corrections as corrections
from indexes.faiss_index import STOPWORDS
from pipelines.embed import BUNDLED_MINILM, load_embedder, resolve_model_path

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"
HELD_OUT = ["test", "test2", "test3", "test4", "test5", "test6", "test7"]
TOKEN_FEATURES = ("tok_min", "tok_min2", "tok_mina", "tok_minb", "tok_f", "tok_low")


class TokenVectors:
    """Unit vectors of a text's content word pieces, from MiniLM's last layer."""

    def __init__(self):
        import sentence_transformers as st

        self.model = st.SentenceTransformer(str(resolve_model_path(BUNDLED_MINILM)), device="cpu", local_files_only=True)
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, text: str) -> np.ndarray:
        if text not in self.cache:
            vectors = self.model.encode([text], output_value="token_embeddings", convert_to_numpy=False)[0].numpy()
            tokenizer = self.model.tokenizer
            pieces = tokenizer.convert_ids_to_tokens(tokenizer(text, truncation=True, max_length=256)["input_ids"])
            keep = [i for i, p in enumerate(pieces) if p not in ("[CLS]", "[SEP]") and re.search(r"\w", p)
                    and (p.startswith("##") or p not in STOPWORDS)]
            v = vectors[keep] if keep else vectors[1:-1]
            self.cache[text] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return self.cache[text]


def token_features(vectors: TokenVectors, a: str, b: str) -> dict[str, float]:
    m = vectors(corrections.expand(a)) @ vectors(corrections.expand(b)).T
    best_a, best_b = m.max(1), m.max(0)
    both = np.r_[best_a, best_b]
    return {"tok_min": float(both.min()), "tok_min2": float(np.sort(both)[:2].mean()),
            "tok_mina": float(best_a.min()), "tok_minb": float(best_b.min()),
            "tok_f": float(2 / (1 / best_a.mean() + 1 / best_b.mean())), "tok_low": float(np.mean(both < 0.6))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", default="tok_min,tok_f", help=f"of {', '.join(TOKEN_FEATURES)}")
    parser.add_argument("--base", action="store_true", help="the matcher's features alone")
    args = parser.parse_args()
    extra = () if args.base else tuple(args.extra.split(","))
    embedder = load_embedder()
    embed = corrections.embed_once(embedder.embed_queries)
    vectors = TokenVectors()
    base, base_features = corrections.FEATURES, corrections.features

    def features(a, b, similarity, embed, names=None):
        names = tuple(corrections.FEATURES if names is None else names)
        own = [n for n in names if n in base]
        values = dict(zip(own, base_features(a, b, similarity, embed, tuple(own))))
        if len(own) < len(names):
            values.update(token_features(vectors, a, b))
        return [values[n] for n in names]

    # calibrate, Matcher and evaluate_matcher read these module names when called: an experiment only
    corrections.features, corrections.FEATURES = features, base + extra
    pairs = corrections.load_pairs(DATASETS / "corrections_calibration.jsonl")
    fitted = corrections.calibrate(pairs, corrections.pair_similarity(embedder), 0.02, embed=embed)
    matcher = corrections.Matcher.from_dict(fitted["matcher"])
    print(f"features {', '.join(matcher.names)}: band {matcher.band}, p_min {matcher.p_min}, "
          f"related_min {matcher.related_min}")
    print("held-out set: paraphrases / near misses / unrelated pairs overridden, recall after review")
    for name in HELD_OUT:
        result = corrections.evaluate_matcher(matcher, corrections.load_pairs(DATASETS / f"corrections_{name}.jsonl"),
                                              corrections.pair_similarity(embedder), embed=embed)
        print(f"  {name}: {result['paraphrase_recall']:.0%} / {result['near_miss_override_rate']:.1%} / "
              f"{result['unrelated_override_rate']:.1%}, {result['reviewed_recall']:.0%}")


if __name__ == "__main__":
    main()
