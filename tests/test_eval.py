import json
from pathlib import Path

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
    for line, says in (('{"question": 42, "source": ["a"]}', "bad.jsonl:1: 'question' must be non-blank text, not 42"),
                       ('{"question": "  ", "source": "a"}', "bad.jsonl:1: 'question' must be non-blank text"),
                       ('{"question": "q", "source": "a", "reference_answer": 3}', "'reference_answer' must be text"),
                       ('"just text"', "bad.jsonl:1: expected {\"question\""),
                       ('{"question": "q"', "bad.jsonl:1: not JSON")):
        bad.write_text(line + "\n")
        with pytest.raises(ValueError) as caught:
            load_dataset(bad)
        assert says in str(caught.value)
    bad.write_text('{"question": "q", "source": "a"}\n{"question": 42, "source": "a"}\n\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2: 'question'"):  # the first bad line, not the first unparsable
        load_dataset(bad)
    from rag.corrections import is_pair_file

    array = tmp_path / "array.json"  # one JSON array of questions is a question set, not pairs
    array.write_text(json.dumps([{"question": "x", "source": "y"}, {"question": "z", "source": ""}]))
    assert not is_pair_file(array)
    with pytest.raises(ValueError, match="array.json: item 2: 'source' must be non-blank text"):
        load_dataset(array)
    array.write_text(json.dumps([{"a": "x", "b": "y", "match": True}]))
    assert is_pair_file(array)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"question": "caf\u00e9?", "source": "y"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match="latin.jsonl is not UTF-8 text"):
        load_dataset(latin)
    from rag.corrections import load_pairs

    latin.write_bytes('{"a": "caf\u00e9?", "b": "the caf\u00e9?", "match": true}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match="latin.jsonl is not UTF-8 text"):
        load_pairs(latin)


@pytest.mark.parametrize("spec, says", [
    ("k=abc", "k must be a whole number"), ("k=0", "k must be a whole number"),
    ("retrieval_mode=foo", "retrieval_mode: Input should be 'dense', 'lexical' or 'hybrid' (got 'foo')"),
    ("top_k=3,x", "top_k: Input should be a valid integer"), ("nope=1", "expected NAME=V1,V2"),
])
def test_a_bad_sweep_says_which_value(spec, says):
    from rag.errors import ConfigError
    from rag.evaluate import parse_sweeps

    with pytest.raises(ConfigError) as caught:
        parse_sweeps([spec])
    assert says in str(caught.value) and "errors.pydantic.dev" not in str(caught.value)
    assert parse_sweeps(["k=3,5", "retrieval_mode=dense,hybrid"]) == {"k": [3, 5], "retrieval_mode": ["dense", "hybrid"]}


def test_rag_eval_says_the_review_queue_floor_is_for_question_pairs(tmp_path):
    from click.testing import CliRunner

    from rag.cli import cli

    questions = tmp_path / "qa.jsonl"
    questions.write_text('{"question": "x", "source": "y"}\n')
    result = CliRunner().invoke(cli, ["eval", str(questions), "--min-similarity", "0.5", "--json"])
    assert result.exit_code != 0 and "for a file of question pairs" in json.loads(result.stdout)["error"]


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
    # the gold sections are path#anchor (no --source-url): they count against the chunks' anchors
    assert max(r["anchor_hit_rate"] for r in runs if r["k"] == 3) >= 5 / 6
    for name in ("results.json", "report.md", "hit_at_k.png", "retrieval_score_by_retrieval_mode.png", "retrieval_score_by_k.png"):
        assert (docs.parent / "out" / name).stat().st_size > 0
    assert (docs.parent / "out" / "hit_at_k.png").read_bytes()[:4] == b"\x89PNG"
    detail = json.loads((docs.parent / "out" / "results.json").read_text())
    assert len(detail[0]["results"]) == 6 and "rank" in detail[0]["results"][0]
    assert all(r["gold_not_indexed"] == 0 for r in runs)

    # a gold source the index cannot return (not as `rag ingest` keyed it) is a miss, and said so
    Path("wrong.jsonl").write_text(json.dumps({"question": "glacier uploads", "source": "storage.rst"}) + "\n")
    result = runner.invoke(cli, ["eval", "wrong.jsonl", "--no-llm", "--out", "out2", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["gold_not_indexed"] == 1
    assert "1 of the questions' sources name no file or URL in the index (such as storage.rst)" in result.stderr


class _ScriptedEndpoint:
    """An OpenAI-compatible endpoint on loopback that answers by the job its prompt asks for."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from tests.fault_server import sse_body

        def reply_for(messages):
            system = messages[0]["content"] if messages[0]["role"] == "system" else ""
            if "strict grader" in system:
                return "Score: 4|\nReason: close to the reference."
            if "supported by its sources" in system:
                return "Supported: YES|\nReason: stated in [1]."
            if "compare two answers" in system:
                return "A"
            return "Run wombat self-update [1]."

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                self.wfile.write(sse_body(reply_for(body["messages"]), {"prompt_tokens": 100, "completion_tokens": 10}))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.integration
def test_rag_eval_with_a_judge_reports_quality_faithfulness_cost_and_pairwise(docs, ray_local):
    from click.testing import CliRunner

    from rag.cli import cli

    endpoint = _ScriptedEndpoint()
    try:
        with open("qa.jsonl", "w") as fh:
            fh.write(json.dumps({"question": "How do I upgrade Wombat?", "source": "docs/guide/install.md",
                                 "reference_answer": "Run wombat self-update."}) + "\n")
            fh.write(json.dumps({"question": "What licence does Wombat use?", "source": "docs/faq.html"}) + "\n")
        runner = CliRunner()
        assert runner.invoke(cli, ["ingest", "docs", "--json"]).exit_code == 0
        # a person's correction of the first question: the eval scores the model's answer, and logs nothing
        assert runner.invoke(cli, ["correct", "--question", "How do I upgrade Wombat?", "--answer", "By hand."]).exit_code == 0
        result = runner.invoke(cli, ["eval", "qa.jsonl", "--out", "out", "--json", "--llm-base-url", endpoint.url,
                                     "--llm-model", "gpt-4", "--judge", endpoint.url, "--judge-model", "judge",
                                     "--sweep", "k=3,5"])
        assert result.exit_code == 0, result.output
        runs = json.loads(result.stdout)["runs"]
        answers = runs[0]["answers"]
        assert answers["quality_score"] == 4 and answers["quality_judged"] == 1  # only one reference answer
        assert answers["faithfulness"] == 1.0 and answers["faithfulness_judged"] == 2
        assert answers["cost_per_query_usd"] == pytest.approx((100 * 30 + 10 * 60) / 1e6)  # priced as GPT-4
        assert answers["cost_on"]["gpt-3.5-turbo"] == pytest.approx((100 * 0.5 + 10 * 1.5) / 1e6)
        assert runs[1]["answers"]["pairwise_vs_first"]["undecided"] == 2  # "A" both ways: a self-contradiction
        assert "## Judged" in (docs.parent / "out" / "report.md").read_text()
        detail = json.loads((docs.parent / "out" / "results.json").read_text())
        assert detail[0]["results"][0]["extra"]["answer"] == "Run wombat self-update [1]."
        from rag import Assistant

        assert Assistant(index=".rag").corrections.recent_answers() == []
    finally:
        endpoint.close()
