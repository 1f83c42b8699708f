"""Does a correction hold better once it has other wordings of its question linked to it?

    python benchmarks/linked_wordings.py [--sets test,test2,test3,test4,test5,test6,test7] [--max-k 1]

Through the ask path (`Assistant.find_correction`, the default matcher, no judge): every
anchor question of a held-out set is a correction in one store. Then, for each anchor, the
first `k` of its paraphrases (in the file's order) are linked `same_as` it, as a reviewer
does from the review queue or when writing the correction, and its other paraphrases are
asked: the share its own correction answers. Every near miss of the set is asked too: the
share any correction answers (a wrong override). Only anchors with more than `--max-k`
paraphrases count, and the paraphrases asked are those after the first `--max-k`, the same
for every k: k = 0 is the matcher alone on them. `--max-k 0`: every anchor, every
paraphrase, nothing linked (the ask path's own figures).

A `same_as` link holds for its question in its own words (see docs/corrections.md), so a
linked paraphrase adds nothing here, and no near miss.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from indexes.faiss_index import FaissIndex
from pipelines.embed import load_embedder
from rag import Assistant, Config
from rag.corrections import load_pairs

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def run(embedder, pairs: list[dict], k: int, max_k: int) -> tuple[float, float, int]:
    """Anchors with more than `max_k` paraphrases, each with its first k linked; asked: the
    paraphrases after the first `max_k` (the same for every k), and the anchors' near misses."""
    paraphrases: dict[str, list[str]] = {}
    for p in pairs:
        paraphrases.setdefault(p["a"], [])
        if p["match"]:
            paraphrases[p["a"]].append(p["b"])
    kept = {a for a, wordings in paraphrases.items() if len(wordings) > max_k}
    with tempfile.TemporaryDirectory() as where:
        assistant = Assistant(Config(index=where), index=FaissIndex(where), embedder=embedder, llm=None)
        asked = []
        for anchor in kept:
            correction = assistant.correct(f"(the corrected answer to: {anchor})", question=anchor)
            for wording in paraphrases[anchor][:k]:
                assistant.correct(question=wording, same_as=correction.id)
            asked += [(wording, correction.id) for wording in paraphrases[anchor][max_k:]]
        held = [(found := assistant.find_correction(q)) is not None and found[0].id == cid for q, cid in asked]
        near = [assistant.find_correction(p["b"]) is not None for p in pairs if not p["match"] and p["a"] in kept]
    return sum(held) / len(held), sum(near) / len(near), len(held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="test,test2,test3,test4,test5,test6,test7")
    parser.add_argument("--max-k", type=int, default=1, help="links per correction: 0 to this")
    args = parser.parse_args()
    embedder = load_embedder()
    print("paraphrases answered by their correction / near misses answered by any (paraphrases asked)")
    for name in args.sets.split(","):
        pairs = load_pairs(DATASETS / f"corrections_{name}.jsonl")
        results = [run(embedder, pairs, k, args.max_k) for k in range(args.max_k + 1)]
        print(f"{name} ({results[0][2]} paraphrases): "
              + " | ".join(f"k={k}: {held:.0%} / {near:.1%}" for k, (held, near, _) in enumerate(results)))


if __name__ == "__main__":
    main()
