"""Do the bundled SmolLM2's likelihoods tell paraphrases from near misses where MiniLM cannot?

    python benchmarks/lm_features.py [--limit N]

For each pair of evals/datasets/corrections_*.jsonl (a, b), SmolLM2-135M (llama.cpp) scores b
after "Question: a / The same question in other words:" and after the same prompt with no
question; the per-token gain is what a tells the model about b. Five features, both ways:
the smaller and the larger mean gain, the smaller mean log-probability, the least per-token
gain and the least per-token log-probability.

Inside the band (cosine 0.57 or more, no opposite words), it prints each feature's AUC for
paraphrase against near miss (0.5: no signal; below 0.5: higher for near misses), the same for
the matcher's features, and then each held-out set in turn: a logistic model fit on the other
five sets' pairs in the band, with its threshold at 2% of their near misses, first on the
matcher's features alone, then with the five above (paraphrases / near misses overridden,
of the held-out set's pairs). About 0.45 s per pair on two cores: 15 minutes for all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipelines.embed import load_embedder
from rag.corrections import FEATURES, _fit_logistic, embed_once, features, load_pairs, opposed
from rag.llm import default_gguf

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"
SETS = ["calibration", "test", "test2", "test3", "test4", "test5"]
PROMPT = "Question: {q}\nThe same question in other words:"
LM_FEATURES = ("gain_min", "gain_max", "logprob_min", "token_gain_min", "token_logprob_min")


class Scorer:
    """Per-token log-probabilities of a text after a prompt, by SmolLM2 in llama.cpp."""

    def __init__(self):
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(default_gguf()), n_ctx=512, logits_all=True, verbose=False, n_threads=2)

    def __call__(self, prompt: str, text: str) -> np.ndarray:
        llm = self.llm
        head = [llm.token_bos()] + llm.tokenize(prompt.encode(), add_bos=False)
        tail = llm.tokenize((" " + text).encode(), add_bos=False)
        llm.reset()
        llm.eval(head + tail)
        logits = np.array(llm.scores[len(head) - 1:len(head) + len(tail) - 1], dtype=np.float64)
        logits -= logits.max(1, keepdims=True)
        return logits[np.arange(len(tail)), tail] - np.log(np.exp(logits).sum(1))


def lm_features(score: Scorer, a: str, b: str) -> list[float]:
    ways = []
    for x, y in ((a, b), (b, a)):
        given, alone = score(PROMPT.format(q=x), y), score(PROMPT.format(q="").rstrip(), y)
        gain = given - alone
        ways.append((gain.mean(), given.mean(), gain.min(), given.min()))
    (g1, l1, t1, m1), (g2, l2, t2, m2) = ways
    return [min(g1, g2), max(g1, g2), min(l1, l2), min(t1, t2), min(m1, m2)]


def auc(values: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = values[labels], values[~labels]
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def held_out(x: np.ndarray, y: np.ndarray, sets: np.ndarray, band: np.ndarray, name: str) -> str:
    train, test = band & (sets != name), band & (sets == name)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-9
    w = np.array(_fit_logistic((x[train] - mean) / std, y[train].astype(float)))

    def p(rows):
        return 1 / (1 + np.exp(-(w[0] + ((x[rows] - mean) / std) @ w[1:])))

    threshold = np.quantile(p(train)[~y[train]], 0.98)
    chosen = p(test) >= threshold
    everything = sets == name
    return f"{(chosen & y[test]).sum() / (everything & y).sum():.0%} / {(chosen & ~y[test]).sum() / (everything & ~y).sum():.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="pairs per set (default: all)")
    args = parser.parse_args()
    embedder = load_embedder()
    embed = embed_once(embedder.embed_queries, {})
    score = Scorer()
    rows = []
    for name in SETS:
        for pair in load_pairs(DATASETS / f"corrections_{name}.jsonl")[: args.limit]:
            va, vb = embed([pair["a"], pair["b"]])
            cosine = float(va @ vb)
            rows.append((name, bool(pair["match"]), cosine, opposed(pair["a"], pair["b"]) is not None,
                         features(pair["a"], pair["b"], cosine, embed), lm_features(score, pair["a"], pair["b"])))
    sets = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    band = (np.array([r[2] for r in rows]) >= 0.57) & ~np.array([r[3] for r in rows])
    base, lm = np.array([r[4] for r in rows]), np.array([r[5] for r in rows])
    print(f"{band.sum()} pairs in the band, {(band & y).sum()} of them paraphrases")
    print("AUC in the band: " + ", ".join(f"{n} {auc(v[band], y[band]):.2f}"
                                           for n, v in [*zip(FEATURES, base.T), *zip(LM_FEATURES, lm.T)]))
    print("held out: the matcher's features | with SmolLM2's (paraphrases / near misses overridden)")
    for name in SETS[1:]:
        print(f"  {name}: {held_out(base, y, sets, band, name)} | {held_out(np.hstack([base, lm]), y, sets, band, name)}")


if __name__ == "__main__":
    main()
