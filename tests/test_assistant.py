import pytest

from indexes import Chunk, IndexNotFoundError
from indexes.faiss_index import FaissIndex
from pipelines.embed import HashEmbedder
from rag import Answer, Assistant, Config
from rag.assistant import cited_numbers
from rag.errors import LLMError
from rag.llm import ChatModel, ScriptedChat
from tests.conftest import write_chunks

E = HashEmbedder()


@pytest.fixture
def index(tmp_path):
    idx = FaissIndex(tmp_path / "idx")
    write_chunks(idx, E, {
        "docs/upgrade.md": [Chunk("docs/upgrade.md", "To upgrade wombat run wombat self-update", 0, "Wombat", ("Wombat", "Upgrading"), "upgrading")],
        "docs/storage.md": [Chunk("docs/storage.md", "The glacier backend retries uploads five times", 0, "Storage", ("Storage",), "storage", "https://x/storage.html#storage")],
        "docs/faq.md": [Chunk("docs/faq.md", "Thumbnails are generated lazily by wombat thumbs", 0, "FAQ", ("FAQ",), "faq")],
    })
    return idx


def assistant(index, reply="Run self-update [1].", **config):
    return Assistant(Config(embedding_model="fake-hash", **config), index=index, embedder=E, llm=ScriptedChat(reply))


def test_ask_returns_cited_sources_usage_latency_and_prompt_version(index):
    a = assistant(index).ask("how to upgrade wombat")
    assert a.text == "Run self-update [1]."
    assert [(s.n, s.path, s.cited) for s in a.sources] == [(1, "docs/upgrade.md", True)]
    assert len(a.retrieved) == 3 and [s.cited for s in a.retrieved] == [True, False, False]
    assert a.usage.completion_tokens == 3 and a.usage.prompt_tokens > 0
    assert set(a.latency_ms) == {"embed", "corrections", "retrieve", "llm", "total"} and a.prompt == "answer@v1" and a.model == "scripted"
    assert len(a.id) == 32 and a.error is None


@pytest.mark.parametrize("setting, bundled, constrained", [
    ("auto", True, True), ("auto", False, False), ("citations", False, True), ("none", True, False),
])
def test_the_citation_grammar_constrains_the_bundled_model_by_default(index, setting, bundled, constrained):
    """auto: the bundled SmolLM2 (which rarely cites on its own) writes under the grammar; a
    GGUF model of the user's own writes freely unless told to, and keeps code and long answers."""
    class Grammatical(ScriptedChat):
        supports_grammar = True

        def stream(self, messages, *, grammar=None, **kwargs):
            self.grammars.append(grammar)
            yield from super().stream(messages, **kwargs)

    llm = Grammatical("Run self-update [1].")
    llm.bundled, llm.grammars = bundled, []
    Assistant(Config(embedding_model="fake-hash", llm_grammar=setting), index=index, embedder=E, llm=llm).ask("upgrade?")
    assert (llm.grammars[0] is not None) == constrained
    assert not constrained or 'cite ::= "1"' in llm.grammars[0]


def test_prompt_holds_numbered_blocks_with_locations(index):
    llm = ScriptedChat()
    Assistant(Config(embedding_model="fake-hash"), index=index, embedder=E, llm=llm).ask("glacier uploads retries")
    user = llm.calls[0][-1]["content"]
    assert 'Excerpt [1] from "Storage":\nThe glacier backend' in user
    assert user.startswith("Question: glacier uploads retries")


def test_citations_out_of_range_are_ignored_and_uncited_answers_keep_all_sources(index):
    a = assistant(index, reply="See [7] and [2, 9].").ask("thumbnails")
    assert [s.n for s in a.sources] == [2]
    b = assistant(index, reply="No citations at all.").ask("thumbnails")
    assert [s.cited for s in b.sources] == [False, False, False] and b.sources == b.retrieved


@pytest.mark.parametrize("text, n, want", [("[1][2] and [2]", 3, [1, 2]), ("[3, 1]", 3, [3, 1]), ("[0] [4] [x]", 3, []), ("", 3, [])])
def test_cited_numbers(text, n, want):
    assert cited_numbers(text, n) == want


def test_context_budget_keeps_rank_order_and_at_least_one_block(index):
    a = assistant(index, context_tokens=20).ask("wombat")
    assert 1 <= len(a.retrieved) < 3
    assert [s.n for s in a.retrieved] == list(range(1, len(a.retrieved) + 1))


def test_stream_yields_text_then_the_answer(index):
    items = list(assistant(index, reply="one two three [1]").stream("upgrade"))
    assert "".join(i for i in items if isinstance(i, str)) == "one two three [1]"
    assert isinstance(items[-1], Answer) and sum(isinstance(i, Answer) for i in items) == 1


class Broken(ChatModel):
    name = "broken"

    def stream(self, messages, *, max_tokens=256, temperature=0.0):
        yield "partial"
        raise LLMError("endpoint down")


def test_llm_failure_still_returns_sources_with_an_error(index):
    a = Assistant(Config(embedding_model="fake-hash"), index=index, embedder=E, llm=Broken()).ask("upgrade")
    assert a.error == "endpoint down" and a.text == "partial" and len(a.sources) == 3
    assert a.to_dict()["error"] == "endpoint down"


def test_asking_without_an_index_says_how_to_build_one(tmp_path):
    a = Assistant(Config(index=str(tmp_path / "none"), embedding_model="fake-hash"), llm=ScriptedChat())
    with pytest.raises(IndexNotFoundError, match="rag ingest PATH"):
        a.ask("anything")


@pytest.mark.parametrize("question, k", [("", None), ("   ", None), ("upgrade", 0), ("upgrade", -2), ("upgrade", 1.5)])
def test_a_blank_question_or_a_k_below_one_is_refused(index, question, k):
    import numpy as np

    a = assistant(index)
    assert len(a.search("upgrade", np.int64(2))) == 2  # any whole number
    with pytest.raises(ValueError):
        a.search(question, k)
    with pytest.raises(ValueError):
        a.ask(question, k)
    assert a.corrections.recent_answers() == []  # nothing was asked, nothing logged


def test_answer_json_shape(index):
    d = assistant(index).ask("upgrade").to_dict()
    assert {"answer", "sources", "usage", "latency_ms"} <= set(d)
    assert set(d["sources"][0]) >= {"path", "url", "title", "score", "text"}
    assert set(d["usage"]) == {"prompt_tokens", "completion_tokens"}


def test_constructor_is_cheap_and_loads_nothing(tmp_path):
    a = Assistant(Config(index=str(tmp_path / "x"), llm_local_model="/nonexistent.gguf"))
    assert a._index is None and a._embedder is None and a._llm is None


def test_cost_from_the_price_table(index):
    a = Assistant(Config(embedding_model="fake-hash", price_model="gpt-4", prices={"mine": [1.0, 2.0]}),
                  index=index, embedder=E, llm=ScriptedChat("one two [1]"))
    answer = a.ask("upgrade")
    expected = (answer.usage.prompt_tokens * 30 + answer.usage.completion_tokens * 60) / 1e6
    assert answer.cost_usd == pytest.approx(expected) and answer.to_dict()["cost_usd"] == answer.cost_usd
    from rag.pricing import cost_usd, price_table

    assert cost_usd("mine", 1_000_000, 500_000, price_table({"mine": [1.0, 2.0]})) == pytest.approx(2.0)
    assert cost_usd("SmolLM2-135M-Instruct.Q4_1", 10, 10, price_table()) == 0.0


def test_a_follow_up_is_rewritten_by_its_own_model_before_retrieval(index):
    rewriter = ScriptedChat("How do I upgrade wombat?")
    answerer = ScriptedChat("Run self-update [1].")
    a = Assistant(Config(embedding_model="fake-hash"), index=index, embedder=E, llm=answerer,
                  job_llms={"rewrite": rewriter})
    history = [{"role": "user", "content": "What is wombat?"}, {"role": "assistant", "content": "A photo archiver."}]
    answer = a.ask("and how do I upgrade it?", history=history)
    assert answer.question == "How do I upgrade wombat?" and "rewrite" in answer.latency_ms
    assert "Last question: and how do I upgrade it?" in rewriter.calls[0][-1]["content"]
    assert "user: What is wombat?" in rewriter.calls[0][-1]["content"]
    assert answerer.calls[0][-1]["content"].startswith("Question: How do I upgrade wombat?")
    assert [s.path for s in answer.sources] == ["docs/upgrade.md"]  # clean sources for the follow-up
    assert a.ask("how do I upgrade wombat").question == "how do I upgrade wombat"  # no history: no rewrite


@pytest.mark.parametrize("reply, asked", [
    ("To upgrade Wombat, download the latest version and run the installer [2].", None),  # an answer, cited
    ("Run the installer [1]", None),
    ("x" * 200 + "?", None),  # far longer than a rewrite
    ("You can install Wombat using pip:", None),  # an answer, the bundled model's kind
    ("Yes, it runs on macOS.", None),
    ("how do I upgrade wombat", "how do I upgrade wombat"),
    ("Tell me more about upgrading Wombat.", "Tell me more about upgrading Wombat."),  # a request is a rewrite too
    ("What does wombat.versions()[0] return after an upgrade?", "What does wombat.versions()[0] return after an upgrade?"),
])
def test_a_rewrite_that_reads_as_an_answer_is_not_asked(index, reply, asked):
    answerer = ScriptedChat("Run self-update [1].")
    a = Assistant(Config(embedding_model="fake-hash"), index=index, embedder=E, llm=answerer,
                  job_llms={"rewrite": ScriptedChat(reply)})
    history = [{"role": "user", "content": "How do I install Wombat?"}, {"role": "assistant", "content": "Use apt [1]."}]
    # not a rewrite: the earlier question and the follow-up are retrieved and answered together;
    # the answer (and the log, the next turn's history) keeps the follow-up as asked
    answer = a.ask("and how do I upgrade it?", history=history)
    assert answer.question == (asked or "and how do I upgrade it?")
    searched = asked or "How do I install Wombat? and how do I upgrade it?"
    assert answerer.calls[0][-1]["content"].startswith(f"Question: {searched}")


def test_follow_ups_the_model_does_not_rewrite_stay_bounded_in_a_conversation(index):
    answerer = ScriptedChat("Run self-update [1].")
    a = Assistant(Config(embedding_model="fake-hash"), index=index, embedder=E, llm=answerer,
                  job_llms={"rewrite": ScriptedChat("You can install Wombat using pip:")})
    asked = ["How do I install Wombat on Linux?", "and on Windows?", "and on macOS?", "what about FreeBSD?",
             "and " + "x" * 390 + "?"]
    for question in asked:
        assert a.ask(question, conversation_id="c" * 16).question == question
    searched = [call[-1]["content"].split("\n")[0] for call in answerer.calls]
    assert searched[2] == "Question: How do I install Wombat on Linux? and on Windows? and on macOS?"
    assert searched[3] == ("Question: How do I install Wombat on Linux? and on Windows? and on macOS? "
                           "what about FreeBSD?")  # the last three turns (history_turns) and this one
    assert searched[4] == "Question: " + asked[4]  # the latest question whole, within 400 characters
    assert a.corrections.conversation("c" * 16, 5)[1].question == "and on Windows?"


def test_job_models_come_from_config(tmp_path):
    from rag.llm import LocalChat, OpenAIChat, load_job_chat

    c = Config(job_llms={"rewrite": {"base_url": "local"}, "rerank": {"base_url": "http://h:1/v1", "model": "m"}})
    assert isinstance(load_job_chat(c, "rewrite"), LocalChat)
    rr = load_job_chat(c, "rerank")
    assert isinstance(rr, OpenAIChat) and rr.name == "m" and load_job_chat(c, "judge") is None


def test_an_index_location_can_be_passed_directly(tmp_path):
    a = Assistant(index=str(tmp_path / "idx"), embedding_model="fake-hash")
    assert a.config.index == str(tmp_path / "idx") and a.index.location == str(tmp_path / "idx")


def test_an_uncited_answer_is_attributed_to_the_block_holding_its_words(index):
    a = assistant(index, reply="The glacier backend retries uploads five times.", citation_attribution=True).ask("glacier uploads")
    assert a.text == "The glacier backend retries uploads five times."  # as generated, as streamed
    assert [(s.path, s.cited, s.attributed) for s in a.sources] == [("docs/storage.md", True, True)]
    assert a.to_dict()["sources"][0]["attributed"] is True
    off = assistant(index, reply="The glacier backend retries uploads five times.")  # the default
    b = off.ask("glacier uploads")
    assert b.text == "The glacier backend retries uploads five times." and b.sources == b.retrieved


def test_model_citations_are_not_second_guessed(index):
    a = assistant(index, reply="The glacier backend retries uploads five times [3].",
                  citation_attribution=True).ask("glacier uploads")
    assert [(s.n, s.attributed) for s in a.sources] == [(3, False)]


def test_the_cli_refuses_a_blank_question_and_a_k_below_one(index):
    from click.testing import CliRunner

    from rag.cli import cli

    for args in (["search", ""], ["ask", "  "], ["search", "upgrade", "-k", "0"], ["ask", "upgrade", "-k", "-1"],
                 ["correct", "--question", " ", "--answer", "x"]):
        result = CliRunner().invoke(cli, [*args, "--index", str(index.directory)])
        assert result.exit_code == 2 and ("is empty" in result.output or "x>=1" in result.output), result.output


def test_rag_ingest_interrupted_says_nothing_was_written(index, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import cli

    def interrupted(self, paths, on_progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Assistant, "ingest", interrupted)
    result = CliRunner().invoke(cli, ["ingest", str(index.directory), "--index", str(index.directory)])
    assert result.exit_code == 130 and "unless it had got there, nothing of this run was written" in result.output


def test_the_summary_line_names_the_stages_that_ran(capsys):
    from rag.cli.common import print_answer
    from rag.types import Usage

    verbatim = Answer(id="a1", question="q", text="By hand.", sources=[], retrieved=[], usage=Usage(0, 0),
                      latency_ms={"embed": 4.2, "corrections": 1.0, "total": 6.0}, model="human-correction")
    print_answer(verbatim)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == "human-correction · 0+0 tokens · embed 4 ms, total 6 ms · answer id a1"
