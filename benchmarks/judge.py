"""How far an LLM judge can take correction matching, before one is configured.

    python benchmarks/judge.py [--seeds 5]

With `corrections_judge = "llm"`, the judge decides every pair the classifier finds
plausible, from 0.1 below the band (`Matcher.assess`). No capable model runs here, so
this stands in judges of known quality for it, on the pairs in evals/datasets/ with the
default matcher: one that is always right (the ceiling), ones that are wrong on a random 5%
or 10% of the pairs they are asked about (averaged over `--seeds`), and one that says SAME
to everything (what the classifier alone lets into the judge's zone). The baseline, in the
same run, is the default matcher without a judge. Each line: paraphrases / near misses /
unrelated pairs overridden, and how many pairs of the set (unrelated ones included) the
judge was asked about.

`--judge-floor 0.45 --judge-min 0` measures a wider zone (config `corrections_judge_floor`
and `corrections_judge_min`): the judge is asked about every pair from a similarity of 0.45
up that is not about something else. `--sets test4,test5` runs those sets only.

`--ask-path` measures the same through `Assistant.find_correction` instead of pair by
pair: every anchor question of a set is a correction in a throwaway store, every other
question is asked, and the judge is asked about its nearest corrections first, at most
`--judge-calls` (2) per question, as at ask time: one always right, and one wrong on a
random 5% of its calls (averaged over `--seeds`). A paraphrase counts only when its own
anchor's correction applies; a near miss counts when any correction does. Each line:
paraphrases / near misses overridden, and judge calls per question asked.

To measure your own model: `RAG_CORRECTIONS_JUDGE=llm rag eval
evals/datasets/corrections_test.jsonl` with `llm_base_url` (or `job_llms.judge`) set.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
from pathlib import Path

from pipelines.embed import load_embedder
from rag.corrections import Matcher, embed_once, evaluate_matcher, load_pairs, pair_similarity

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="random judges averaged over this many seeds")
    parser.add_argument("--judge-floor", type=float, help="the judge's zone starts here (default: 0.1 below the band)")
    parser.add_argument("--judge-min", type=float, help="the classifier's least probability for the judge to be asked")
    parser.add_argument("--sets", default="test,test2,test3,test4,test5,test6,test7,calibration",
                        help="comma-separated: corrections_NAME.jsonl for each NAME")
    parser.add_argument("--ask-path", action="store_true", help="through Assistant.find_correction, all anchors stored")
    parser.add_argument("--judge-calls", type=int, default=2, help="with --ask-path: corrections_judge_calls")
    args = parser.parse_args()
    embedder = load_embedder()
    if args.ask_path:
        for name in (s.strip() for s in args.sets.split(",")):
            pairs = load_pairs(DATASETS / f"corrections_{name}.jsonl")
            print(f"corrections_{name}.jsonl")
            for label, wrong, seeds in (("judge always right", 0.0, 1), ("judge wrong on 5%", 0.05, args.seeds)):
                runs = [ask_path(embedder, pairs, args, wrong, seed) for seed in range(seeds)]
                paraphrases, near, calls = (sum(r[i] for r in runs) / len(runs) for i in range(3))
                print(f"  {label:<28} {paraphrases:.0%} / {near:.1%}, {calls:.2f} judge calls per question")
        return
    similarity = pair_similarity(embedder)
    embed = embed_once(embedder.embed_queries)  # every run embeds the same texts: once is enough
    matcher = Matcher.from_dict(None)
    zone = {"judge_floor": args.judge_floor, "judge_min": args.judge_min}
    matcher = dataclasses.replace(matcher, **{k: v for k, v in zone.items() if v is not None})
    for name in (f"corrections_{s.strip()}" for s in args.sets.split(",")):
        pairs = load_pairs(DATASETS / f"{name}.jsonl")
        truth = {(p["a"], p["b"]): bool(p["match"]) for p in pairs}
        base = evaluate_matcher(matcher, pairs, similarity, None, embed)
        print(f"{name}.jsonl ({base['pairs']} pairs and {base['unrelated_pairs']} unrelated ones)")

        def run(wrong: float | None, seed: int = 0) -> tuple[dict, int]:
            rng, asked = random.Random(seed), []

            def judge(a: str, b: str) -> bool:
                asked.append((a, b))
                if wrong is None:
                    return True
                right = truth.get((a, b), False)
                return (not right) if rng.random() < wrong else right

            return evaluate_matcher(matcher, pairs, similarity, judge, embed), len(asked)

        print(f"  {'no judge (the default)':<28} {rates([base])}")
        for label, wrong, seeds in (("judge always right", 0.0, 1), ("judge wrong on 5%", 0.05, args.seeds),
                                    ("judge wrong on 10%", 0.10, args.seeds), ("judge says SAME to all", None, 1)):
            runs = [run(wrong, seed) for seed in range(seeds)]
            print(f"  {label:<28} {rates([r for r, _ in runs])}   asked about {runs[0][1]} pairs")


def ask_path(embedder, pairs: list[dict], args, wrong: float = 0.0, seed: int = 0) -> tuple[float, float, float]:
    """Paraphrases / near misses overridden through the ask path, with a judge wrong on a
    random `wrong` share of its calls."""
    from indexes.faiss_index import FaissIndex
    from rag import Assistant, Config

    truth = {(p["a"], p["b"]): bool(p["match"]) for p in pairs}
    zone = {"corrections_judge_floor": args.judge_floor, "corrections_judge_min": args.judge_min}
    with tempfile.TemporaryDirectory() as where:
        config = Config(index=where, corrections_judge="llm", corrections_judge_calls=args.judge_calls,
                        **{k: v for k, v in zone.items() if v is not None})
        assistant = Assistant(config, index=FaissIndex(where), embedder=embedder, llm=None)
        ids = {a: assistant.correct(f"(the corrected answer to: {a})", question=a).id for a in dict.fromkeys(p["a"] for p in pairs)}
        calls, rng = [], random.Random(seed)

        def judge(a: str, b: str) -> bool:
            calls.append(a)
            right = truth.get((a, b), False)
            return (not right) if rng.random() < wrong else right

        assistant._judge = judge
        found = [(p, assistant.find_correction(p["b"])) for p in pairs]
    paraphrases = [f is not None and f[0].id == ids[p["a"]] for p, f in found if p["match"]]
    near = [f is not None for p, f in found if not p["match"]]
    return sum(paraphrases) / len(paraphrases), sum(near) / len(near), len(calls) / len(pairs)


def rates(results: list[dict]) -> str:
    def mean(key: str) -> float:
        return sum(r[key] for r in results) / len(results)

    return (f"{mean('paraphrase_recall'):.0%} / {mean('near_miss_override_rate'):.1%} / "
            f"{mean('unrelated_override_rate'):.1%}")


if __name__ == "__main__":
    main()
