"""How often the answering model cites its sources, with and without the citation grammar.

    python benchmarks/citations.py --index INDEX --dataset questions.jsonl --limit 20

Same index, questions, model and retrieval for both runs; for each: the share of answers
with at least one valid [n] citation, the share saying "I do not know", answer length and
time per answer. Small models tend to ignore the instruction to cite; the grammar (llama.cpp
constrained decoding, `llm_grammar = "citations"`) makes the format hold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from evals.retrieval import load_dataset
from rag import Assistant, Config


def run(index: str, questions: list[str], grammar: str, max_tokens: int) -> dict:
    assistant = Assistant(Config(index=index, llm_grammar=grammar, llm_max_tokens=max_tokens, log_answers=False))
    assistant.warm_up()
    cited = unknown = 0
    seconds, lengths = [], []
    for question in questions:
        started = time.perf_counter()
        answer = assistant.ask(question)
        seconds.append(time.perf_counter() - started)
        lengths.append(len(answer.text))
        cited += any(s.cited for s in answer.sources)
        unknown += "do not know" in answer.text.lower()
    n = len(questions)
    return {"llm_grammar": grammar, "questions": n, "cited": round(cited / n, 3), "do_not_know": round(unknown / n, 3),
            "mean_chars": round(statistics.fmean(lengths)), "mean_s": round(statistics.fmean(seconds), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--dataset", required=True, help="JSONL with a 'question' field")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    questions = [item.question for item in load_dataset(args.dataset)][: args.limit]
    rows = [run(args.index, questions, grammar, args.max_tokens) for grammar in ("none", "citations")]
    print("| llm_grammar | answers citing a source | 'do not know' | mean length (chars) | s per answer |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['llm_grammar']} | {r['cited']:.0%} | {r['do_not_know']:.0%} | {r['mean_chars']} | {r['mean_s']} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
