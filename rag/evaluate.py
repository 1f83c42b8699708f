"""`rag eval`: run the evals package's metrics against an Assistant, over sweeps of settings."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from evals.judges import faithfulness, pairwise, quality
from evals.metrics import page_of
from evals.retrieval import Item, evaluate_retrieval, results_to_json
from indexes.errors import ConfigError
from rag.assistant import Assistant
from rag.config import Config, explain
from rag.pricing import cost_usd, price_table

CHUNKING = {"chunk_tokens", "chunk_overlap"}


def parse_sweeps(specs: list[str]) -> dict[str, list[Any]]:
    """["top_k=3,5", "retrieval_mode=dense,hybrid"] -> {"top_k": [3, 5], ...}; `k` is the eval's k."""
    swept: dict[str, list[Any]] = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        name = name.strip()
        if not values or (name != "k" and name not in Config.model_fields):
            raise ConfigError(f"--sweep {spec!r}: expected NAME=V1,V2 with NAME a setting (see docs/configuration.md) or k")
        swept[name] = [_value(v.strip()) for v in values.split(",") if v.strip()]
        for value in swept[name]:
            if name == "k":
                if not isinstance(value, int) or value < 1:
                    raise ConfigError(f"--sweep {spec!r}: k must be a whole number of at least 1, not {value!r}")
                continue
            try:
                Config(**{name: value})
            except ValidationError as exc:
                raise ConfigError(f"--sweep {spec!r}: {explain(exc, sources=False)}") from None
    return swept


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def judge_from(spec: str | None, model: str | None = None, api_key: str | None = None):
    """`generate(messages) -> str` for a judge: "local" (the bundled model) or an endpoint URL."""
    if not spec:
        return None
    from rag.llm import LocalChat, OpenAIChat

    chat = LocalChat() if spec == "local" else OpenAIChat(spec, model or "default", api_key)
    return lambda messages: chat.complete(messages, max_tokens=96).text


def indexed_pages(index) -> set[str]:
    """What a gold source can name (without its anchor) and retrieval can return: the paths of
    the files in the index, and the URLs of its chunks."""
    pages = {path for path, record in index.manifest().items() if not record.error}
    return pages | {page_of(c.url) for c in index.chunks() if c.url}


def run_eval(
    base: Config,
    items: list[Item],
    k: int,
    swept: dict[str, list[Any]],
    answers: bool,
    out: Path,
    corpus: str | None = None,
    on_progress: Callable[[str], None] | None = None,
    judge: Callable | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every combination of the swept values; returns one run per combination. The
    answers are the model's: corrections do not apply (unless `corrections` is swept) and
    nothing is written to the answer log."""
    if CHUNKING & swept.keys() and not corpus:
        raise ConfigError("Sweeping chunk_tokens or chunk_overlap re-ingests: pass --corpus PATH")
    names = list(swept)
    runs = []
    shared: dict[str, Any] = {}
    for values in itertools.product(*(swept[n] for n in names)) if names else [()]:
        params = dict(zip(names, values))
        run_k = int(params.get("k", k))
        updates = {n: v for n, v in params.items() if n != "k"}
        # the model's answers, not people's: no correction applies unless swept, and the answer log is left alone
        config = base.updated(**{"corrections": False, "log_answers": False, **updates})
        if CHUNKING & updates.keys():
            label = "-".join(f"{n}{updates[n]}" for n in sorted(CHUNKING & updates.keys()))
            config = config.model_copy(update={"index": str(out / "indexes" / label)})
        assistant = Assistant(config, embedder=shared.get("embedder"), llm=shared.get("llm"))
        if CHUNKING & updates.keys():
            if on_progress:
                on_progress(f"ingesting {corpus} with {updates}")
            assistant.ingest([corpus])
        shared["embedder"] = assistant.embedder
        if config.reranker == "llm" or answers:
            shared["llm"] = assistant.llm
        assistant.search(items[0].question, run_k)  # warm up: model loads are not query latency

        def retrieve(question: str, depth: int) -> list[list[str]]:
            return [[i for i in (h.chunk.url, h.chunk.path, h.chunk.anchor and f"{h.chunk.path}#{h.chunk.anchor}") if i]
                    for h in assistant.search(question, depth)]

        if on_progress:
            on_progress(f"evaluating {params or 'the configuration'} on {len(items)} questions")
        summary, results = evaluate_retrieval(items, retrieve, run_k)
        if "unknown" not in shared:  # a gold source the index cannot return is a miss whatever retrieval does
            pages = indexed_pages(assistant.index)
            shared["unknown"] = sorted({i.source for i in items if page_of(i.source) not in pages})
        summary["gold_not_indexed"] = len(shared["unknown"])
        summary["gold_not_indexed_examples"] = shared["unknown"][:3]
        per_question = results_to_json(results)
        if answers:
            summary["answers"] = _answers(assistant, items, run_k, per_question, judge)
        runs.append({"params": params, "summary": summary, "results": per_question})
    if judge is not None and answers and len(runs) == 2:
        runs[1]["summary"]["answers"]["pairwise_vs_first"] = _pairwise(judge, items, runs[0]["results"], runs[1]["results"])
    return runs


def _pairwise(judge, items: list[Item], first: list[dict], second: list[dict]) -> dict[str, Any]:
    """Which configuration's answers the judge prefers; each pair is asked in both orders."""
    wins = {"first": 0, "second": 0, "undecided": 0}
    for item, a, b in zip(items, first, second):
        context = "\n".join(a["retrieved"][:5])
        one = pairwise(judge, item.question, context, a["extra"]["answer"], b["extra"]["answer"]).value
        two = pairwise(judge, item.question, context, b["extra"]["answer"], a["extra"]["answer"]).value
        if (one, two) == ("A", "B"):
            wins["first"] += 1
        elif (one, two) == ("B", "A"):
            wins["second"] += 1
        else:
            wins["undecided"] += 1  # the judge contradicted itself or gave no verdict
    return wins


def _answers(assistant: Assistant, items: list[Item], k: int, per_question: list[dict], judge=None) -> dict[str, Any]:
    latencies, prompt_tokens, completion_tokens, costs, errors = [], [], [], [], 0
    scores, supported = [], []
    for item, row in zip(items, per_question):
        answer = assistant.ask(item.question, k)
        row["extra"] = {"answer": answer.text, "cited": [s.location for s in answer.sources if s.cited],
                        "usage": answer.usage.to_dict(), "cost_usd": answer.cost_usd, "error": answer.error,
                        "reference_answer": item.reference_answer}
        if judge is not None and answer.text:
            context = "\n\n".join(f"[{s.n}] {s.text}" for s in answer.retrieved)
            if item.reference_answer:
                v = quality(judge, item.question, item.reference_answer, answer.text)
                row["extra"]["quality"] = {"score": v.value, "reason": v.reason}
                if v.value is not None:
                    scores.append(v.value)
            f = faithfulness(judge, context, answer.text)
            row["extra"]["faithful"] = {"supported": f.value, "reason": f.reason}
            if f.value is not None:
                supported.append(f.value)
        latencies.append(answer.latency_ms.get("total", 0.0))
        prompt_tokens.append(answer.usage.prompt_tokens)
        completion_tokens.append(answer.usage.completion_tokens)
        costs.append(answer.cost_usd)
        errors += answer.error is not None
    n = len(items)
    table = price_table(assistant.config.prices)
    return {
        "cost_on": {model: cost_usd(model, sum(prompt_tokens), sum(completion_tokens), table) / n for model in table},
        "answered": n - errors,
        "errors": errors,
        "model": assistant.llm.name,
        "prompt_tokens_per_query": sum(prompt_tokens) / n,
        "completion_tokens_per_query": sum(completion_tokens) / n,
        "cost_per_query_usd": sum(costs) / n,
        "cost_total_usd": sum(costs),
        "latency_ms_p50": statistics.median(latencies),
        **({"quality_score": sum(scores) / len(scores) if scores else None, "quality_judged": len(scores),
            "faithfulness": sum(supported) / len(supported) if supported else None,
            "faithfulness_judged": len(supported)} if judge is not None else {}),
    }


def evaluate_as_asked(assistant: Assistant, pairs: list[dict]) -> dict[str, Any]:
    """Correction matching as a deployment meets it: every anchor question of `pairs` (each
    pair's "a"; anchors that differ only in case, punctuation or contractions are one) a
    correction in one scratch store (a FAISS directory, whatever the index's backend) with
    `assistant`'s embedding model, matcher and LLM judge settings, and every other question
    asked through `find_correction`, so a question can meet any correction, not only its own
    pair's. A paraphrase counts when a correction answers it whose question the set labels a
    paraphrase of it (its own anchor's); a near miss when any correction answers it that the set
    does not label so. A pair whose question is itself an anchor is not asked (its own
    correction answers it): `pairs_skipped`. A rate is None where no pair of its kind was asked.

    When no correction answers a question, `ask` may offer the asker some
    (`related_corrections`, at most `corrections_offers`): `paraphrase_recall_with_askers`
    counts a paraphrase offered its own correction too (an asker who confirms what they asked
    gets it), `near_misses_offered` the near misses offered any (an asker would say no: the
    cost is their attention)."""
    import tempfile

    from indexes.corrections import Correction
    from indexes.faiss_index import FaissIndex
    from pipelines.embed import canonical_name
    from rag.corrections import question_key

    anchors = {question_key(p["a"]): p["a"] for p in reversed(pairs)}  # the first wording of each
    same: dict[str, set[str]] = {}
    for p in pairs:
        if p["match"]:
            same.setdefault(p["b"], set()).add(question_key(p["a"]))
    asked = [p for p in pairs if question_key(p["b"]) not in anchors]
    questions = list(dict.fromkeys(p["b"] for p in asked))
    embedder = assistant.embedder
    judged = assistant.config.corrections_judge == "llm"
    found: dict[str, str | None] = {}
    offered: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as where:
        scratch = Assistant(assistant.config.model_copy(update={"index": where}), index=FaissIndex(where),
                            embedder=embedder, llm=assistant.llm_for("judge") if judged else None,
                            job_llms={"judge": assistant.llm_for("judge")} if judged else None)
        try:
            saved = assistant.corrections.get_meta("matcher")
            if saved:
                scratch.corrections.set_meta("matcher", saved)
            model = canonical_name(assistant.config.embedding_model)
            keys = list(anchors)
            by_id = {}
            for key, vector in zip(keys, embedder.embed_queries([anchors[k] for k in keys]) if keys else []):
                correction = Correction(question=anchors[key], answer=f"(the corrected answer to: {anchors[key]})",
                                        author="rag eval", model=model)  # each its own answer
                by_id[scratch.corrections.add(correction, vector)] = key
            for q, vector in zip(questions, embedder.embed_queries(questions) if questions else []):
                hit, related = scratch._lookup(q, vector, offers=assistant.config.corrections_offers)
                found[q] = by_id.get(hit[0].id) if hit else None
                offered[q] = [by_id[r["id"]] for r in related if r["id"] in by_id]
        finally:
            scratch.corrections.close()

    def wrong(p: dict) -> bool:
        return found[p["b"]] is not None and found[p["b"]] not in same.get(p["b"], set())

    def own(p: dict) -> bool:
        return found[p["b"]] is not None and found[p["b"]] in same.get(p["b"], set())

    def rate(values: list[bool]) -> float | None:
        return sum(values) / len(values) if values else None

    paraphrases = [p for p in asked if p["match"]]
    near = [p for p in asked if not p["match"]]
    return {
        "corrections": len(anchors),
        "questions_asked": len(questions),
        "pairs_asked": len(asked),
        "pairs_skipped": len(pairs) - len(asked),
        "paraphrase_recall": rate([own(p) for p in paraphrases]),
        "paraphrases_given_another_correction": rate([wrong(p) for p in paraphrases]),
        "near_miss_override_rate": rate([wrong(p) for p in near]),
        "paraphrase_recall_with_askers": rate([own(p) or bool(set(offered[p["b"]]) & same.get(p["b"], set()))
                                               for p in paraphrases]),
        "near_misses_offered": rate([bool(offered[p["b"]]) for p in near]),
        "rows": [{**p, "answered_by": anchors.get(found[p["b"]]) if found[p["b"]] else None,
                  "offered": [anchors[k] for k in offered[p["b"]]]} for p in asked],
    }
