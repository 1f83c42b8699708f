import json

import pytest

from evals.retrieval import Item, evaluate_retrieval, load_dataset
from tests.conftest import FIXTURES


def test_evaluate_retrieval_numbers_worked_out_by_hand():
    items = [Item("q1", "https://x/a.html#s1"), Item("q2", "https://x/b.html"), Item("q3", "docs/c.md#z"),
             Item("q4", "https://x/d.html")]
    retrieved = {
        "q1": [["https://x/z.html"], ["https://x/a.html#other"], ["https://x/a.html#s1"]],  # page rank 2, anchor rank 3
        "q2": [["https://x/b.html#intro"]],  # rank 1
        "q3": [["https://x/q.html", "docs/q.md"], ["https://x/c.html#z", "docs/c.md"]],  # by path, rank 2
        "q4": [["https://x/a.html"]],  # miss
    }
    summary, results = evaluate_retrieval(items, lambda q, n: retrieved[q][:n], k=2)
    assert [r.rank for r in results] == [2, 1, 2, None]
    assert [r.anchor_rank for r in results] == [3, 1, None, None]
    assert summary["retrieval_score"] == 0.75 and summary["hit@1"] == 0.25 and summary["hit@3"] == 0.75
    assert summary["mrr"] == pytest.approx((0.5 + 1 + 0.5 + 0) / 4)
    assert summary["anchor_hit_rate"] == 0.25
    assert [r.hit for r in results] == [True, True, True, False]


def test_load_dataset_reports_bad_lines(tmp_path):
    assert len(load_dataset(FIXTURES / "eval.jsonl")) == 6
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "source": "y"}\n{"nope": 1}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_dataset(bad)


@pytest.mark.integration
def test_rag_eval_cli_with_a_sweep_writes_report_and_plots(docs, ray_local):
    import shutil
    from click.testing import CliRunner

    from rag.cli import cli

    shutil.copy(FIXTURES / "eval.jsonl", "eval.jsonl")
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", "docs", "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["eval", "eval.jsonl", "--no-llm", "--out", "out", "--json",
                                 "--sweep", "retrieval_mode=dense,lexical,hybrid", "--sweep", "k=1,3"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert len(runs) == 6 and {r["params"]["retrieval_mode"] for r in runs} == {"dense", "lexical", "hybrid"}
    best = max(r["retrieval_score"] for r in runs if r["k"] == 3)
    assert best >= 5 / 6
    for name in ("results.json", "report.md", "hit_at_k.png", "retrieval_score_by_retrieval_mode.png", "retrieval_score_by_k.png"):
        assert (docs.parent / "out" / name).stat().st_size > 0
    assert (docs.parent / "out" / "hit_at_k.png").read_bytes()[:4] == b"\x89PNG"
    detail = json.loads((docs.parent / "out" / "results.json").read_text())
    assert len(detail[0]["results"]) == 6 and "rank" in detail[0]["results"][0]
