"""Evaluation: retrieval metrics over a small protocol (never imports `rag`)."""

from evals.metrics import hit_at_k, mean_reciprocal_rank, page_of, rank_of, retrieval_score

__all__ = ["hit_at_k", "mean_reciprocal_rank", "page_of", "rank_of", "retrieval_score"]
