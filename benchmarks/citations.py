"""Which sources an answer lists, and whether they are right: the model's own citations,
the citation grammar, and attribution of uncited answers.

    python benchmarks/citations.py --index INDEX --dataset questions.jsonl --limit 30

Same index, questions, model and retrieval for every configuration:
- `none, no attribution`: the model's own [n] citations; an answer citing nothing lists
  every retrieved block;
- `none, attribution` (`citation_attribution = true`): an answer citing nothing has each
  sentence attributed to the block holding most of its words (scored on the same
  generations as the first);
- `citations grammar`: llama.cpp constrained decoding makes every sentence end with [n].

For each: the share of answers with a cited (or attributed) source, "I do not know"
answers, sources listed per answer, and against the dataset's gold page (`source`): the
share of answers whose sources include it (recall), the share of listed sources on it
(precision), and the same two for answers that are not "I do not know".
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from evals.metrics import page_of
from evals.retrieval import load_dataset
from rag import Assistant, Config
from rag.assistant import _DO_NOT_KNOW
from rag.attribution import attribute

def _attributed(answer):
    """The sources `citation_attribution = true` lists for an answer made with it off: the
    same generation, so both are scored on one run of the model (the same skips as the
    assistant: model citations, errors, "I do not know")."""
    if any(s.cited for s in answer.sources) or answer.error or _DO_NOT_KNOW.search(answer.text):
        return answer.sources
    support = attribute(answer.text, {s.n: s.text for s in answer.retrieved}).support
    return [s for s in answer.retrieved if s.n in support] or answer.retrieved


def score(name: dict, items, answers, sources_of, seconds) -> dict:
    n = len(items)
    cited = unknown = 0
    lengths, listed, recall, precision, retrieved_recall = [], [], [], [], []
    for item, answer in zip(items, answers):
        sources = sources_of(answer)
        gold = page_of(item.source)
        pages = [page_of(s.location) for s in sources]
        cited += sources != answer.retrieved
        unknown += "do not know" in answer.text.lower()
        lengths.append(len(answer.text))
        listed.append(len(pages))
        recall.append(gold in pages)
        precision.append(sum(p == gold for p in pages) / len(pages) if pages else 0.0)
        retrieved_recall.append(gold in [page_of(s.location) for s in answer.retrieved])
    return {**name, "questions": n, "cited": round(cited / n, 3),
            "do_not_know": round(unknown / n, 3), "sources_per_answer": round(statistics.fmean(listed), 2),
            "gold_in_sources": round(statistics.fmean(recall), 3), "source_precision": round(statistics.fmean(precision), 3),
            "gold_in_retrieved": round(statistics.fmean(retrieved_recall), 3),
            "mean_chars": round(statistics.fmean(lengths)), "mean_s": round(statistics.fmean(seconds), 2)}


def run(index: str, items, grammar: str, max_tokens: int) -> tuple[list, list[float]]:
    assistant = Assistant(Config(index=index, llm_grammar=grammar, citation_attribution=False,
                                 llm_max_tokens=max_tokens, log_answers=False))
    assistant.warm_up()
    answers, seconds = [], []
    for item in items:
        started = time.perf_counter()
        answers.append(assistant.ask(item.question))
        seconds.append(time.perf_counter() - started)
    return answers, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--dataset", required=True, help="JSONL with 'question' and 'source' (the gold page)")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    items = load_dataset(args.dataset)[: args.limit]
    plain, seconds = run(args.index, items, "none", args.max_tokens)
    rows = [score({"llm_grammar": "none", "attribution": False}, items, plain, lambda a: a.sources, seconds),
            score({"llm_grammar": "none", "attribution": True}, items, plain, _attributed, seconds)]
    constrained, seconds = run(args.index, items, "citations", args.max_tokens)
    rows.append(score({"llm_grammar": "citations", "attribution": False}, items, constrained, lambda a: a.sources, seconds))
    print(f"{len(items)} questions; the gold page was among the retrieved blocks for "
          f"{rows[0]['gold_in_retrieved']:.0%} of them.\n")
    print("| llm_grammar | attribution | answers citing a source | 'do not know' | sources per answer "
          "| gold page in sources | sources on the gold page | mean length (chars) | s per answer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['llm_grammar']} | {'on' if r['attribution'] else 'off'} | {r['cited']:.0%} | {r['do_not_know']:.0%} "
              f"| {r['sources_per_answer']} | {r['gold_in_sources']:.0%} | {r['source_precision']:.0%} "
              f"| {r['mean_chars']} | {r['mean_s']} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"command": "benchmarks/citations.py", "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
