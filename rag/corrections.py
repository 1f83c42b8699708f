"""Closing the loop: human corrections that override known-bad answers.

Matching a new question to a corrected one is the hard part: paraphrases must match,
near misses (same words, another question) must not, and a wrong override is worse
than a missed one. The match has two stages:

1. similarity band: below `band` never, at or above `accept` always;
2. in the band, a check of what differs: a logistic model over the cosine similarity
   and the overlap of content words (fit by `rag corrections calibrate`), and, when
   `corrections_judge = "llm"`, an equivalence call to the chat model with its own
   prompt. Both must agree.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from indexes.corrections import Correction, CorrectionStore
from indexes.faiss_index import STOPWORDS

# `rag corrections calibrate evals/datasets/corrections_calibration.jsonl` with the bundled
# MiniLM and no false overrides allowed; an index's own calibration, once run, replaces it.
DEFAULT_MATCHER = {"band": 0.77, "accept": 0.94, "p_min": 0.85, "weights": [-6.485, 11.355, -4.986]}


def content_stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z0-9_]+", text.lower()) if w not in STOPWORDS}


def features(a: str, b: str, similarity: float) -> tuple[float, float]:
    sa, sb = content_stems(a), content_stems(b)
    jaccard = len(sa & sb) / len(sa | sb) if sa | sb else 1.0
    return similarity, jaccard


@dataclass
class Matcher:
    band: float
    accept: float
    p_min: float
    weights: list[float]  # bias, cosine, jaccard

    @classmethod
    def from_dict(cls, data: dict | None) -> "Matcher":
        return cls(**{**DEFAULT_MATCHER, **(data or {})})

    def probability(self, similarity: float, jaccard: float) -> float:
        b, wc, wj = self.weights
        return 1.0 / (1.0 + math.exp(-(b + wc * similarity + wj * jaccard)))

    def decide(self, a: str, b: str, similarity: float, judge: Callable[[str, str], bool] | None = None) -> tuple[bool, str]:
        """(match?, why)."""
        if similarity >= self.accept:
            return True, f"similarity {similarity:.3f} >= {self.accept}"
        if similarity < self.band:
            return False, f"similarity {similarity:.3f} < {self.band}"
        p = self.probability(*features(a, b, similarity))
        if p < self.p_min:
            return False, f"in band, classifier p={p:.2f} < {self.p_min}"
        if judge is not None and not judge(a, b):
            return False, "in band, the LLM judge says the questions differ"
        return True, f"in band, classifier p={p:.2f}" + (" and LLM judge agree" if judge else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- calibration ---------------------------------------------------------------------------
def _fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 4000, lr: float = 0.5, l2: float = 1e-3) -> list[float]:
    """Weights (bias first) of a logistic regression, by gradient descent (tiny data)."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / std
    w = np.zeros(z.shape[1] + 1)
    design = np.hstack([np.ones((len(z), 1)), z])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ w))
        w -= lr * (design.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]])
    # back to raw feature scale
    raw = w[1:] / std
    return [float(w[0] - (w[1:] * mean / std).sum()), *map(float, raw)]


def calibrate(pairs: list[dict], similarity: Callable[[list[str], list[str]], np.ndarray], max_false_rate: float = 0.0) -> dict[str, Any]:
    """Choose the matcher that overrides the most paraphrases while wrongly overriding at most
    `max_false_rate` of the near misses. `pairs`: [{"a": q, "b": q2, "match": bool}]."""
    sims = similarity([p["a"] for p in pairs], [p["b"] for p in pairs])
    y = np.array([bool(p["match"]) for p in pairs])
    x = np.array([features(p["a"], p["b"], float(s)) for p, s in zip(pairs, sims)])
    weights = _fit_logistic(x, y.astype(float))
    best = None
    for band in np.arange(0.50, 0.99, 0.01):
        for accept in np.arange(band, 1.001, 0.01):
            for p_min in np.arange(0.3, 0.96, 0.05):
                m = Matcher(round(float(band), 2), round(float(accept), 2), round(float(p_min), 2), weights)
                decided = np.array([m.decide(p["a"], p["b"], float(s))[0] for p, s in zip(pairs, sims)])
                recall = decided[y].mean() if y.any() else 0.0
                false_rate = decided[~y].mean() if (~y).any() else 0.0
                if false_rate <= max_false_rate + 1e-9:
                    key = (recall, -false_rate, m.band, m.accept)
                    if best is None or key > best[0]:
                        best = (key, m, recall, false_rate)
    _, matcher, recall, false_rate = best
    thresholds = []
    for t in np.arange(0.5, 1.0, 0.05):
        matched = sims >= t
        tp, fp = int((matched & y).sum()), int((matched & ~y).sum())
        thresholds.append({"threshold": round(float(t), 2), "precision": tp / (tp + fp) if tp + fp else 1.0,
                           "recall": tp / int(y.sum()) if y.any() else 0.0, "false_override_rate": fp / int((~y).sum()) if (~y).any() else 0.0})
    return {"matcher": matcher.to_dict(), "recall": float(recall), "false_override_rate": float(false_rate),
            "pairs": len(pairs), "cosine_only": thresholds, "similarities": [float(s) for s in sims],
            "labels": [bool(v) for v in y]}


def pair_similarity(embedder) -> Callable[[list[str], list[str]], np.ndarray]:
    """Cosine similarity of each (a, b) question pair, with `embedder`."""
    return lambda a, b: (embedder.embed_documents(a) * embedder.embed_documents(b)).sum(axis=1)


def evaluate_matcher(matcher: Matcher, pairs: list[dict], similarity, judge=None) -> dict[str, Any]:
    sims = similarity([p["a"] for p in pairs], [p["b"] for p in pairs])
    rows = []
    for p, s in zip(pairs, sims):
        matched, why = matcher.decide(p["a"], p["b"], float(s), judge)
        rows.append({**p, "similarity": float(s), "matched": matched, "why": why})
    paraphrases = [r for r in rows if r["match"]]
    near = [r for r in rows if not r["match"]]
    overridden = [r for r in rows if r["matched"]]
    return {
        "pairs": len(rows),
        "paraphrase_recall": sum(r["matched"] for r in paraphrases) / len(paraphrases) if paraphrases else 0.0,
        "near_miss_override_rate": sum(r["matched"] for r in near) / len(near) if near else 0.0,
        "override_precision": sum(r["match"] for r in overridden) / len(overridden) if overridden else 1.0,
        "rows": rows,
    }


def plot_calibration(result: dict, path: str | Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t = [r["threshold"] for r in result["cosine_only"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, [r["recall"] for r in result["cosine_only"]], marker="o", label="paraphrases overridden (recall)")
    ax.plot(t, [r["false_override_rate"] for r in result["cosine_only"]], marker="o", label="near misses overridden")
    ax.plot(t, [r["precision"] for r in result["cosine_only"]], linestyle="--", label="precision")
    m = result["matcher"]
    ax.axvspan(m["band"], m["accept"], alpha=0.15, label="band checked by the classifier")
    ax.scatter([m["band"]], [result["recall"]], color="black", zorder=5,
               label=f"two-stage matcher: recall {result['recall']:.2f}, false {result['false_override_rate']:.2f}")
    ax.set_xlabel("cosine similarity threshold")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("Correction matching")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def load_pairs(path: str | Path) -> list[dict]:
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                row = json.loads(line)
                if not {"a", "b", "match"} <= set(row):
                    raise ValueError(f"{path}:{number}: expected {{'a': ..., 'b': ..., 'match': true/false}}")
                pairs.append(row)
    return pairs


def correction_info(correction: Correction, mode: str, similarity: float) -> dict[str, Any]:
    return {"id": correction.id, "mode": mode, "author": correction.author, "created_at": correction.created_at,
            "similarity": round(similarity, 4), "question": correction.question}


__all__ = ["Correction", "CorrectionStore", "Matcher", "calibrate", "correction_info", "evaluate_matcher",
           "load_pairs", "plot_calibration"]
