"""What the askers see: corrections applied, and corrections offered for them to confirm.

    python benchmarks/asker_offers.py [--sets test,test2,...] [--offers 2] [--offer-floor 0.5]
        [--questions ../shared/evals/ray-docs-dev.jsonl]

Every anchor question of a set is a correction in one scratch store (as `rag eval` does for
`as_asked`), and every other question of the set is asked. When no correction applies, `ask`
names up to `corrections_offers` corrections of similar questions (`related_corrections`);
an asker who confirms the one that asks their question gets its answer. Each line:
paraphrases answered by their own correction without anyone's help; the same counting those
offered their own correction (askers who confirm it); near misses overridden; near misses
offered a correction (an asker says no: what it costs is their attention).

`--questions FILE` (JSON Lines with a "question" field, such as a retrieval question set)
also asks each of those questions against every set's corrections and counts how many are
overridden and how many are offered something: questions that none of the corrections was
written for, about the same product. `--offer-floor` sets `corrections_offer_floor` (default:
the matcher's offer floor).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from indexes.corrections import Correction
from indexes.faiss_index import FaissIndex
from pipelines.embed import canonical_name, load_embedder
from rag import Assistant, Config
from rag.corrections import load_pairs, question_key
from rag.evaluate import evaluate_as_asked

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def others(embedder, pairs: list[dict], questions: list[str], config: Config) -> dict[str, float]:
    """Questions none of the set's corrections was written for, asked with its anchors stored."""
    offers = config.corrections_offers
    with tempfile.TemporaryDirectory() as where:
        assistant = Assistant(config.model_copy(update={"index": where}), index=FaissIndex(where),
                              embedder=embedder, llm=None)
        anchors = list({question_key(p["a"]): p["a"] for p in pairs}.values())
        model = canonical_name(assistant.config.embedding_model)
        for question, vector in zip(anchors, embedder.embed_queries(anchors)):
            assistant.corrections.add(Correction(question=question, answer=f"(answer to: {question})", model=model), vector)
        applied = offered = 0
        started = time.perf_counter()
        for question, vector in zip(questions, embedder.embed_queries(questions)):
            match, related = assistant._lookup(question, vector, offers=offers)
            applied += match is not None
            offered += bool(related)
        seconds = time.perf_counter() - started
        assistant.corrections.close()
    return {"applied": applied / len(questions), "offered": offered / len(questions),
            "ms_per_question": 1000 * seconds / len(questions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="test,test2,test3,test4,test5,test6,test7")
    parser.add_argument("--offers", type=int, default=2)
    parser.add_argument("--offer-floor", type=float, default=None, help="corrections_offer_floor")
    parser.add_argument("--questions", default=None, help="JSON Lines with a 'question' field")
    parser.add_argument("--min-probability", type=float, default=0.0,
                        help="Show only the offers the classifier gives at least this probability (an experiment).")
    args = parser.parse_args()
    if args.min_probability > 0:  # of the offers ask makes, keep the likelier ones
        related = Assistant._related

        def likelier(self, *a, **k):
            return [r for r in related(self, *a, **k) if r["probability"] >= args.min_probability]
        Assistant._related = likelier
    embedder = load_embedder()
    questions = ([json.loads(line)["question"] for line in Path(args.questions).read_text().splitlines() if line.strip()]
                 if args.questions else [])
    config = Config(corrections_offers=args.offers, corrections_offer_floor=args.offer_floor)
    print(f"corrections_offers = {args.offers}" + (f", corrections_offer_floor = {args.offer_floor}"
                                                    if args.offer_floor is not None else "") + (f", offers of probability {args.min_probability} or more"
                                                    if args.min_probability > 0 else ""))
    print("set | paraphrases: own correction / with askers | near misses: overridden / offered"
          + (f" | {len(questions)} other questions: overridden / offered, ms each" if questions else ""))
    for name in args.sets.split(","):
        pairs = load_pairs(DATASETS / f"corrections_{name}.jsonl")
        with tempfile.TemporaryDirectory() as where:
            assistant = Assistant(config.model_copy(update={"index": where}), index=FaissIndex(where),
                                  embedder=embedder, llm=None)
            a = evaluate_as_asked(assistant, pairs)
            assistant.corrections.close()
        line = (f"{name} | {a['paraphrase_recall']:.1%} / {a['paraphrase_recall_with_askers']:.1%} | "
                f"{a['near_miss_override_rate']:.1%} / {a['near_misses_offered']:.1%}")
        if questions:
            o = others(embedder, pairs, questions, config)
            line += f" | {o['applied']:.1%} / {o['offered']:.1%}, {o['ms_per_question']:.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
