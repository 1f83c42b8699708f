import pytest

from evals import hit_at_k, mean_reciprocal_rank, page_of, rank_of, retrieval_score


def test_page_of_drops_the_anchor():
    assert page_of("https://x/a.html#sec") == "https://x/a.html" and page_of("a.md") == "a.md"


def test_rank_by_page_and_by_anchor():
    retrieved = ["https://x/b.html#one", "https://x/a.html#other", "https://x/a.html#sec"]
    assert rank_of("https://x/a.html#sec", retrieved) == 2
    assert rank_of("https://x/a.html#sec", retrieved, by_page=False) == 3
    assert rank_of("https://x/c.html", retrieved) is None


def test_scores_worked_out_by_hand():
    # ranks of the gold page for four questions: 1, 3, missing, 2
    ranks = [1, 3, None, 2]
    assert hit_at_k(ranks, 1) == 0.25
    assert hit_at_k(ranks, 2) == 0.5
    assert hit_at_k(ranks, 3) == 0.75
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    golds = ["a#x", "b", "c"]
    retrieved = [["a#y", "z"], ["z", "b#q"], ["z", "z"]]
    assert retrieval_score(golds, retrieved, k=1) == pytest.approx(1 / 3)
    assert retrieval_score(golds, retrieved, k=2) == pytest.approx(2 / 3)
