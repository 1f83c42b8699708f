"""Retrieval metrics.

`retrieval_score` follows the Ray assistant reference project: a question counts as
retrieved when its gold page (the source without `#anchor`) is among the pages of the
top-k retrieved chunks.
"""

from __future__ import annotations

from typing import Sequence


def page_of(source: str) -> str:
    """A source URL or path without its `#anchor`."""
    return source.split("#", 1)[0]


def rank_of(gold: str, retrieved: Sequence[str], by_page: bool = True) -> int | None:
    """1-based rank of the first retrieved source matching `gold`, or None."""
    key = page_of if by_page else (lambda s: s)
    wanted = key(gold)
    for rank, source in enumerate(retrieved, 1):
        if key(source) == wanted:
            return rank
    return None


def hit_at_k(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose gold source ranks within the top k."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def retrieval_score(golds: Sequence[str], retrieved: Sequence[Sequence[str]], k: int) -> float:
    """Share of questions whose gold page is among the pages of their top-k retrieved chunks."""
    return hit_at_k([rank_of(g, r[:k]) for g, r in zip(golds, retrieved)], k)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r) / len(ranks)
