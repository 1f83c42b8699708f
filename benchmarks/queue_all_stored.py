"""The review queue with every correction of a set stored at once, as in a real index.

    python benchmarks/queue_all_stored.py [--sets test,test2,test3,test4,test5,test6,test7]

`rag eval` measures the queue pair by pair: a paraphrase the matcher misses counts as
recovered when the queue suggests it for its own anchor, with no other correction stored.
In a real index a question is near several corrections, and the queue suggests one of them.
Here every anchor question of a set is a correction in one store (no documents needed),
every other question of the set is logged once as an answer the model gave, and
`Assistant.suggest_links` lists the whole queue. Each line: paraphrases the matcher applies
their own correction to; those it misses that the queue suggests for their own correction
(what a reviewer can confirm) and for another one; near misses the matcher overrides (any
correction); and the recall once a reviewer confirms every right suggestion.

A reviewer who turns a wrong suggestion down (`--not-same-as`) gets the question again,
for its next nearest plausible correction, the next time the queue is listed. `--rounds N`
plays that out: each round the reviewer links every suggestion, same_as its own correction
or not_same_as another, and the queue is listed again. It prints the recall after each
round and the decisions made.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

from indexes.corrections import AnswerRecord
from indexes.faiss_index import FaissIndex
from pipelines.embed import load_embedder
from rag import Assistant, Config
from rag.corrections import load_pairs

DATASETS = Path(__file__).resolve().parent.parent / "evals" / "datasets"


def run(embedder, pairs: list[dict], rounds: int = 1) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as where:
        assistant = Assistant(Config(index=where), index=FaissIndex(where), embedder=embedder, llm=None)
        own = {a: assistant.correct(f"(the corrected answer to: {a})", question=a).id for a in dict.fromkeys(p["a"] for p in pairs)}
        matched, logged = {}, {}
        for p in pairs:
            found = assistant.find_correction(p["b"])
            matched[p["b"]] = found[0].id if found else None
            if found is None:  # the model answered: it is in the log the queue reads
                record = AnswerRecord(uuid.uuid4().hex, p["b"], "x", [], "m", "p")
                assistant.corrections.log_answer(record)
                logged[p["b"]] = record.id
        queue = {s["question"]: s["correction_id"] for s in assistant.suggest_links(limit=10**6, scan=len(pairs))}
        answer_of = {q: a for q, a in logged.items()}
        mine = {p["b"]: own[p["a"]] for p in pairs if p["match"]}
        confirmed, decisions, after = set(), 0, []
        current = queue
        for _ in range(rounds):
            for question, correction_id in current.items():
                decisions += 1
                if mine.get(question) == correction_id:
                    assistant.correct(answer_id=answer_of[question], same_as=correction_id)
                    confirmed.add(question)
                else:
                    assistant.correct(answer_id=answer_of[question], not_same_as=correction_id)
            after.append((len(confirmed), decisions))
            current = {s["question"]: s["correction_id"]
                       for s in assistant.suggest_links(limit=10**6, scan=len(pairs))}
            if not current:
                break
    paraphrases = [p for p in pairs if p["match"]]
    near = [p for p in pairs if not p["match"]]
    missed = [p for p in paraphrases if matched[p["b"]] != own[p["a"]]]
    right = sum(queue.get(p["b"]) == own[p["a"]] for p in missed)
    other = sum(p["b"] in queue and queue[p["b"]] != own[p["a"]] for p in missed)
    held = len(paraphrases) - len(missed)
    return {"matched": held / len(paraphrases), "right": right / max(1, len(missed)),
            "other": other / max(1, len(missed)), "near": sum(matched[p["b"]] is not None for p in near) / len(near),
            "reviewed": (held + right) / len(paraphrases), "suggestions": len(queue),
            "rounds": [((held + n) / len(paraphrases), d) for n, d in after]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="test,test2,test3,test4,test5,test6,test7")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of a reviewer going through the queue")
    args = parser.parse_args()
    embedder = load_embedder()
    print("set: matched | missed ones suggested for their own correction / for another | near misses "
          "overridden | recall once a reviewer confirms the right suggestions (suggestions)")
    for name in args.sets.split(","):
        r = run(embedder, load_pairs(DATASETS / f"corrections_{name}.jsonl"), args.rounds)
        print(f"{name}: {r['matched']:.0%} | {r['right']:.0%} / {r['other']:.0%} | {r['near']:.1%} | "
              f"{r['reviewed']:.1%} ({r['suggestions']})"
              + ("".join(f"; after round {i}: {rec:.1%}, {d} decisions" for i, (rec, d) in enumerate(r["rounds"], 1))
                 if args.rounds > 1 else ""))


if __name__ == "__main__":
    main()
