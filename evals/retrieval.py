"""Retrieval evaluation over a small protocol: a function from (question, k) to the
identifiers of each retrieved chunk (its URL and/or path). Never imports `rag`."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from evals.metrics import hit_at_k, mean_reciprocal_rank, page_of

Retrieve = Callable[[str, int], list[list[str]]]
KS = (1, 3, 5, 10)


@dataclass
class Item:
    question: str
    source: str
    reference_answer: str | None = None


@dataclass
class QuestionResult:
    question: str
    source: str
    retrieved: list[str]
    rank: int | None  # of the gold page
    anchor_rank: int | None  # of the gold page and section
    latency_ms: float
    hit: bool = False
    extra: dict = field(default_factory=dict)


def _item(where: str, row) -> Item:
    expected = 'expected {"question": text, "source": path or URL[#anchor], "reference_answer": optional text}'
    if not isinstance(row, dict):
        raise ValueError(f"{where}: {expected}, not {type(row).__name__}")
    for name in ("question", "source"):
        if name not in row:
            raise ValueError(f"{where}: no {name!r}; {expected}")
        if not isinstance(row[name], str) or not row[name].strip():
            raise ValueError(f"{where}: {name!r} must be non-blank text, not {json.dumps(row[name])}")
    reference = row.get("reference_answer")
    if reference is not None and not isinstance(reference, str):
        raise ValueError(f"{where}: 'reference_answer' must be text, not {json.dumps(reference)}")
    return Item(row["question"], row["source"], reference)


def load_dataset(path: str | Path) -> list[Item]:
    """JSON Lines (or one JSON array) of {"question": ..., "source": URL-or-path[#anchor],
    "reference_answer": optional}; a bad record is an error that names its line (or item)."""
    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (invalid byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                         "convert it to UTF-8") from None
    text = "\n".join(lines)
    if text.lstrip().startswith("["):  # one JSON array of the same objects
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
        items = [_item(f"{path}: item {n}", row) for n, row in enumerate(rows if isinstance(rows, list) else [rows], 1)]
    else:
        for number, line in enumerate(lines, 1):  # line by line: the first bad line is the one reported
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
                items.append(_item(f"{path}:{number}", row))
    if not items:
        raise ValueError(f"{path} holds no questions")
    return items


def _rank(gold: str, retrieved: Sequence[Sequence[str]], by_page: bool) -> int | None:
    key = page_of if by_page else (lambda s: s)
    wanted = key(gold)
    for rank, identifiers in enumerate(retrieved, 1):
        if any(key(i) == wanted for i in identifiers):
            return rank
    return None


def evaluate_retrieval(items: Iterable[Item], retrieve: Retrieve, k: int = 5, ks: Sequence[int] = KS) -> tuple[dict, list[QuestionResult]]:
    """Summary metrics and per-question results. `retrieval_score` is hit@k by page."""
    depth = max(k, *ks)
    results = []
    for item in items:
        started = time.perf_counter()
        retrieved = retrieve(item.question, depth)
        latency = (time.perf_counter() - started) * 1000
        page_rank = _rank(item.source, retrieved, by_page=True)
        anchor_rank = _rank(item.source, retrieved, by_page=False) if "#" in item.source else page_rank
        results.append(QuestionResult(
            item.question, item.source, [ids[0] for ids in retrieved], page_rank, anchor_rank, latency,
            hit=page_rank is not None and page_rank <= k,
        ))
    return summarize(results, k, ks), results


def summarize(results: list[QuestionResult], k: int, ks: Sequence[int] = KS) -> dict:
    ranks = [r.rank for r in results]
    latencies = sorted(r.latency_ms for r in results)
    return {
        "questions": len(results),
        "k": k,
        "retrieval_score": hit_at_k(ranks, k),
        **{f"hit@{n}": hit_at_k(ranks, n) for n in ks},
        "mrr": mean_reciprocal_rank([r if r is not None and r <= max(ks) else None for r in ranks]),
        "anchor_hit_rate": hit_at_k([r.anchor_rank for r in results], k),
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(q) - 1]


def results_to_json(results: list[QuestionResult]) -> list[dict]:
    return [asdict(r) for r in results]
