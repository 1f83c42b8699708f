"""The real embedding model, the real local LLM, and the whole Assistant on them."""

import numpy as np
import pytest

from pipelines.chunk import embed_text
from rag import Assistant, Config
from rag.errors import ModelNotFoundError
from rag.llm import Completion, LocalChat

pytestmark = pytest.mark.integration


def test_minilm_vectors_are_normalized_float32_and_meaningful(minilm):
    v = minilm.embed_documents(["How do I upgrade the tool?", "Steps to update the program", "Bananas are yellow"])
    assert v.dtype == np.float32 and v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    q = minilm.embed_query("How do I upgrade the tool?")  # on a CPU: fp32 for questions, int8 for documents
    assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-5) and float(q @ v[0]) > 0.995


def test_minilm_token_limits(minilm):
    assert minilm.max_tokens == 254 and minilm.count_tokens("hello world") == 2


def test_unknown_embedding_model_says_how_to_get_it():
    from pipelines.embed import SentenceTransformerEmbedder

    with pytest.raises(ModelNotFoundError, match="never downloads.*RAG_EMBEDDING_MODEL"):
        SentenceTransformerEmbedder("BAAI/bge-small-en-v1.5").warm_up()


def test_missing_gguf_says_what_to_do(tmp_path):
    with pytest.raises(ModelNotFoundError, match="GGUF file"):
        LocalChat(str(tmp_path / "none.gguf")).warm_up()


@pytest.fixture(scope="module")
def smollm():
    chat = LocalChat(n_ctx=2048)
    chat.warm_up()
    return chat


def test_smollm2_streams_text_then_a_completion(smollm):
    items = list(smollm.stream([{"role": "user", "content": "Say hello."}], max_tokens=12))
    deltas, final = items[:-1], items[-1]
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert isinstance(final, Completion) and final.text == "".join(deltas)
    assert final.completion_tokens == len(deltas) <= 12 and final.prompt_tokens > 0
    assert smollm.count_tokens("hello world") >= 2


def test_assistant_end_to_end_on_real_parts(docs, ray_local, smollm):
    assistant = Assistant(Config(index="idx", llm_max_tokens=48), llm=smollm)
    report = assistant.ingest(["docs"])
    assert report.new == 4 and not report.failed
    for chunk in assistant.index.chunks():
        assert assistant.embedder.count_tokens(embed_text(chunk)) <= 254
    hits = assistant.search("Which storage backend is used when none is configured?", k=3)
    assert hits[0].chunk.path == "docs/guide/storage.rst"
    answer = assistant.ask("How do I upgrade Wombat?")
    assert answer.text.strip() and answer.sources
    assert answer.retrieved[0].path == "docs/guide/install.md"
    assert {s.path for s in answer.sources} <= {s.path for s in answer.retrieved}
    assert answer.usage.completion_tokens > 0 and answer.model.startswith("SmolLM2")


def test_the_local_model_always_cites_under_the_citation_grammar(docs, ray_local, smollm):
    """SmolLM2 ignores the citation instruction on its own; under the grammar every sentence
    ends with the number of a block it was given, or the answer is "I do not know."."""
    import re

    assistant = Assistant(Config(index="idx", llm_max_tokens=200, llm_grammar="citations"), llm=smollm)
    assistant.ingest(["docs"])
    shape = re.compile(r"[^\[\]\n]{8,200} \[(\d)\]\.(?: |$)")
    for question in ("How do I upgrade Wombat?", "How many times are glacier uploads retried?",
                     "What licence does Wombat use?"):
        answer = assistant.ask(question)
        if answer.text == "I do not know.":
            continue
        sentences = shape.findall(answer.text)
        assert sentences and shape.sub("", answer.text) == "", answer.text
        assert {int(n) for n in sentences} <= {s.n for s in answer.retrieved}
        assert answer.sources and all(s.cited for s in answer.sources)


def test_attribution_lists_only_blocks_that_hold_an_answer_sentence(docs, ray_local, smollm):
    """With citation_attribution, an answer SmolLM2 did not cite lists as sources only blocks
    holding 60% of the content words of one of its sentences; nothing else is invented."""
    from rag.attribution import split_sentences
    from rag.corrections import content_stems

    assistant = Assistant(Config(index="idx", llm_max_tokens=120, citation_attribution=True, llm_grammar="none"),
                          llm=smollm)
    assistant.ingest(["docs"])
    for question in ("How do I upgrade Wombat?", "How many times are glacier uploads retried?",
                     "What licence does Wombat use?"):
        answer = assistant.ask(question)
        given = {(s.n, s.path) for s in answer.retrieved}
        assert {(s.n, s.path) for s in answer.sources} <= given
        for source in (s for s in answer.sources if s.attributed):
            block = content_stems(source.text)
            assert any(len(w := content_stems(part)) >= 4 and len(w & block) / len(w) >= 0.6
                       for part in split_sentences(answer.text)), (answer.text, source.text)


def test_the_correction_judge_on_the_real_models(tmp_path, minilm, smollm):
    """With corrections_judge = "llm" the chat model decides the pairs MiniLM's classifier finds
    plausible. SmolLM2-135M is too weak to judge (it echoes the question, which counts as
    DIFFERENT); this shows its replies drive the match."""
    from indexes.faiss_index import FaissIndex

    assistant = Assistant(Config(index=str(tmp_path / "idx"), corrections_judge="llm"),
                          index=FaissIndex(tmp_path / "idx"), embedder=minilm, llm=smollm)
    c = assistant.correct("Run wombat self-update.", question="How do I upgrade Wombat?")
    judge, asked = assistant._judge, []
    assistant._judge = lambda a, b: asked.append((a, b)) or judge(a, b)
    question = "How can I bring Wombat to its newest version?"
    found = assistant.find_correction(question)
    assert asked == [(c.question, question)]
    if judge(c.question, question):
        assert found[0].id == c.id and "the LLM judge says the same question" in found[2]
    else:
        assert found is None
    assert assistant.find_correction("How do I downgrade Wombat?") is None and len(asked) == 1  # opposite words
    assert assistant.find_correction("How do I upgrade Wombat?")[0].id == c.id and len(asked) == 1  # the same words


def test_a_wider_judge_zone_shows_the_judge_more_paraphrases(minilm):
    """corrections_judge_floor = 0.45, corrections_judge_min = 0: with MiniLM and the default
    matcher, a judge that is always right (a stand-in) overrides far more of a held-out set's
    paraphrases than in the default zone, and is asked about more pairs."""
    import dataclasses
    from pathlib import Path

    from rag.corrections import Matcher, embed_once, evaluate_matcher, load_pairs, pair_similarity

    pairs = load_pairs(Path(__file__).resolve().parent.parent / "evals" / "datasets" / "corrections_test4.jsonl")
    truth = {(p["a"], p["b"]): p["match"] for p in pairs}
    embed, similarity = embed_once(minilm.embed_queries), pair_similarity(minilm)
    results = {}
    for name, matcher in (("default", Matcher.from_dict(None)),
                          ("wide", dataclasses.replace(Matcher.from_dict(None), judge_floor=0.45, judge_min=0.0))):
        asked = []
        result = evaluate_matcher(matcher, pairs, similarity, lambda a, b: asked.append(a) or truth.get((a, b), False), embed)
        results[name] = (result["paraphrase_recall"], len(asked))
    (default, asked), (wide, wide_asked) = results["default"], results["wide"]
    assert wide > default + 0.15 and wide_asked > asked


# The matcher the previous release shipped as its default: it counted the differing words,
# and learned from one writer's near misses (one slot swapped) that a question reworded all
# through is a paraphrase.
PREVIOUS_DEFAULT = {"band": 0.41, "accept": 1.0, "p_min": 0.8, "weights": [7.8274, 5.4075, -14.1131, 7.9899, -2.7137, 0.45],
                    "related_weights": [-3.5098, 8.2547, 1.7506, -6.9725, -5.1134, -0.0888], "related_min": 0.3}


def test_the_default_matcher_turns_down_reworded_questions_about_something_else(minilm):
    """Questions about one product that reword as much as a paraphrase does, but ask something
    else, are not overridden by the default; paraphrases still are. The previous default
    overrode all three near misses here."""
    from rag.corrections import Matcher, embed_once

    embed = embed_once(minilm.embed_queries)
    near_misses = [
        ("Why does wombat login fail with 'no running agent found'?", "How do I shut down the Wombat agent running on my machine?"),
        ("I have hundreds of queued syncs. Why isn't Wombat starting more workers?", "How do I set the maximum number of workers Wombat can start?"),
        ("How do I get a stack trace of a hung Wombat worker?", "What are common reasons a Wombat job hangs without any error?"),
    ]
    paraphrases = [
        ("How do I upgrade Wombat?", "How can I update Wombat to the latest version?"),
        ("How do I exclude a folder from Wombat sync?", "Can I tell Wombat to skip a directory when syncing?"),
        ("How do I limit Wombat's upload speed?", "Can I cap the bandwidth Wombat uses for uploads?"),
    ]

    def overrides(matcher, pairs):
        return [matcher.decide(a, b, float(np.dot(*embed([a, b]))), embed=embed)[0] for a, b in pairs]

    default, previous = Matcher.from_dict(None), Matcher.from_dict(PREVIOUS_DEFAULT)
    assert overrides(default, near_misses) == [False] * 3 and overrides(default, paraphrases) == [True] * 3
    assert overrides(previous, near_misses) == [True] * 3


def test_two_corrections_about_as_near_are_left_to_a_reviewer(tmp_path, minilm):
    """The classifier takes "Why are my Wombat backups ending in an error state?" for a
    rewording of "How do I resume a failed Wombat backup?", but another correction, with
    another answer, is nearly as near: it applies neither, and the review queue asks a
    reviewer about the nearer one. With the margin off, the nearer applies, as before."""
    from indexes.corrections import AnswerRecord
    from indexes.faiss_index import FaissIndex

    question = "Why are my Wombat backups ending in an error state?"
    found, resume = {}, {}
    for margin in (0.05, 0.0):
        where = tmp_path / f"m{margin}"
        assistant = Assistant(Config(index=str(where), corrections_margin=margin), index=FaissIndex(where),
                              embedder=minilm, llm=None)
        resume[margin] = assistant.correct("Run wombat backup --resume.", question="How do I resume a failed Wombat backup?").id
        assistant.correct("Free a backup slot: wombat slots.", question="Why do Wombat backups stay pending forever?")
        found[margin] = assistant.find_correction(question)
    assert found[0.05] is None and found[0.0][0].id == resume[0.0]
    assistant = Assistant(Config(index=str(tmp_path / "m0.05")), index=FaissIndex(tmp_path / "m0.05"), embedder=minilm, llm=None)
    assistant.corrections.log_answer(AnswerRecord(id="a1", question=question, answer="Check the logs.", sources=[],
                                                  model="m", prompt="answer@1"))
    [suggestion] = assistant.suggest_links()
    assert suggestion["correction_id"] == resume[0.05] and suggestion["answer_id"] == "a1"


def test_corrections_that_answer_one_question_differently_are_listed(tmp_path, minilm):
    """`rag corrections overlaps`: two corrections the matcher takes for one question, with
    answers that differ, are listed once each; the same answer in other case and punctuation,
    and corrections of other questions, are not."""
    import json

    from click.testing import CliRunner

    from indexes.faiss_index import FaissIndex
    from rag.cli import cli

    assistant = Assistant(Config(index=str(tmp_path / "idx")), index=FaissIndex(tmp_path / "idx"), embedder=minilm, llm=None)
    upgrade = assistant.correct("Run wombat self-update.", question="How do I upgrade Wombat?").id
    update = assistant.correct("Use the installer again.", question="How can I update Wombat to the latest version?").id
    assistant.correct("run wombat self-update", question="What's the way to upgrade wombat?")
    assistant.correct("Run wombat rollback.", question="How do I roll back a Wombat upgrade?")
    assistant.correct("Run wombat uninstall.", question="How do I uninstall Wombat?")
    overlaps = assistant.overlapping_corrections()
    assert len(overlaps) == 2 and all(update in (o["a"], o["b"]) for o in overlaps)
    assert {upgrade, update} == {overlaps[0]["a"], overlaps[0]["b"]}
    result = CliRunner().invoke(cli, ["corrections", "overlaps", "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    assert [(o["a"], o["b"]) for o in json.loads(result.stdout)["overlaps"]] == [(o["a"], o["b"]) for o in overlaps]
    # writing one more says so (the CLI, and the HTTP response, name the corrections it overlaps)
    result = CliRunner().invoke(cli, ["correct", "--question", "How do I update Wombat?", "--answer", "Reinstall it.",
                                      "--index", str(tmp_path / "idx")])
    assert result.exit_code == 0 and f"Note: correction {upgrade}" in result.output and "gets neither" in result.output
    result = CliRunner().invoke(cli, ["correct", "--question", "How do I delete a Wombat backup?", "--answer", "wombat rm.",
                                      "--index", str(tmp_path / "idx"), "--json"])
    assert json.loads(result.stdout)["overlaps"] == []


def test_a_correction_of_what_a_correction_answered_or_a_linked_question_is_judged_right(tmp_path, minilm):
    """Correcting an answer that a correction gave to another wording links that wording
    not_same_as it: the two corrections are told apart, not an overlap. A question linked
    same_as a correction counts as its own: a new correction of that question, answered
    differently, overlaps it."""
    from indexes.corrections import AnswerRecord
    from indexes.faiss_index import FaissIndex

    assistant = Assistant(Config(index=str(tmp_path / "idx")), index=FaissIndex(tmp_path / "idx"), embedder=minilm, llm=None)
    upgrade = assistant.correct("Run wombat self-update.", question="How do I upgrade Wombat?")
    assistant.corrections.log_answer(AnswerRecord(id="a1", question="How can I update Wombat to the latest version?",
                                                  answer=upgrade.answer, sources=[], model="m", prompt="answer@1",
                                                  correction_id=upgrade.id))
    update = assistant.correct("Use the installer again.", answer_id="a1")
    assert assistant.overlaps_of(update) == [] and assistant.overlapping_corrections() == []
    assistant.correct(question="Is there a way to get the newest Wombat?", same_as=upgrade.id)
    newest = assistant.correct("Download it from the site.", question="Is there a way to get the newest Wombat?")
    overlaps = assistant.overlaps_of(newest)  # through the link, in its words (and "update" too, reworded)
    assert overlaps[0]["b"] == upgrade.id and overlaps[0]["similarity"] > 0.99


def test_judge_plumbing_with_the_bundled_model(smollm):
    """SmolLM2-135M is too weak to judge; this only shows the real model's replies are handled."""
    from evals.judges import faithfulness, pairwise, quality

    def generate(messages):
        return smollm.complete(messages, max_tokens=24).text

    q = quality(generate, "How do I upgrade?", "Run self-update.", "Use apt-get.")
    assert q.value in (None, 1, 2, 3, 4, 5) and q.raw
    assert pairwise(generate, "q?", "[1] x", "a", "b").value in (None, "A", "B")
    assert faithfulness(generate, "[1] x", "y").value in (None, 0.0, 1.0)


def test_the_asker_confirms_a_paraphrase_the_matcher_missed(tmp_path, minilm):
    """With the bundled MiniLM and the default matcher: a reworded question the classifier turns
    down is offered its correction first (an unrelated one nothing); `rag feedback confirm` gives the
    asker its answer and leaves the link to a reviewer, who finds it first in the queue."""
    import json

    from click.testing import CliRunner

    from indexes.corrections import AnswerRecord
    from indexes.faiss_index import FaissIndex
    from rag.cli import cli

    assistant = Assistant(Config(index=str(tmp_path / "idx")), index=FaissIndex(tmp_path / "idx"), embedder=minilm, llm=None)
    resume = assistant.correct("Run wombat backup --resume.", question="How do I resume a failed Wombat backup?")
    assistant.correct("Run wombat self-update.", question="How do I upgrade Wombat?")
    question = "My Wombat backup failed halfway, can I continue it from where it stopped?"
    assert assistant.find_correction(question) is None
    assert assistant.related_corrections(question)[0]["id"] == resume.id  # the nearest first
    assert assistant.related_corrections("How do I delete photos?") == []
    stricter = Assistant(Config(index=str(tmp_path / "idx"), corrections_offer_floor=0.95), index=FaissIndex(tmp_path / "idx"),
                         embedder=minilm, llm=None)
    assert stricter.related_corrections(question) == []  # corrections_offer_floor: above this pair's cosine
    assistant.corrections.log_answer(AnswerRecord(id="a1", question=question, answer="Check the logs.", sources=[],
                                                  model="m", prompt="answer@1"))
    result = CliRunner().invoke(cli, ["feedback", "confirm", "a1", resume.id, "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["answer"] == "Run wombat backup --resume." and got["correction"]["link_pending"] is True
    assert assistant.find_correction(question) is None  # not before a reviewer agrees
    [first, *_] = assistant.suggest_links()
    assert (first["answer_id"], first["correction_id"], first["confirmed_by_asker"]) == ("a1", resume.id, True)


def test_the_chat_api_offers_and_confirms_on_the_real_embedder(tmp_path, minilm):
    """The HTTP route over the same flow, with MiniLM and the default matcher: /v1/ask names the
    missed paraphrase's correction, /v1/feedback/confirm gives its answer, and the link waits
    for a reviewer in the queue."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from indexes import Chunk
    from indexes.faiss_index import FaissIndex
    from rag.llm import ScriptedChat
    from rag.server import ServerState, create_app
    from tests.conftest import write_chunks

    token = "s3cret-admin-token-0123456789"
    cfg = Config(index=str(tmp_path / "idx"), serve_rate_limit=0, serve_admin_token=token)
    index = FaissIndex(tmp_path / "idx")
    write_chunks(index, minilm, {"docs/backup.md": [Chunk("docs/backup.md", "Wombat backups run nightly.", 0, "Backups",
                                                          ("Backups",), "backups")]})
    assistant = Assistant(cfg, index=index, embedder=minilm, llm=ScriptedChat("Check the logs [1]."))
    client = TestClient(create_app(ServerState(cfg, assistant, warm_up=False)))
    auth = {"Authorization": f"Bearer {token}"}
    resume = client.post("/v1/corrections", headers=auth, json={
        "question": "How do I resume a failed Wombat backup?", "answer": "Run wombat backup --resume."}).json()
    client.post("/v1/corrections", headers=auth, json={"question": "How do I upgrade Wombat?", "answer": "Run wombat self-update."})
    asked = client.post("/v1/ask", json={
        "question": "My Wombat backup failed halfway, can I continue it from where it stopped?"}).json()
    assert asked["correction"] is None and asked["related_corrections"][0]["id"] == resume["id"]
    assert client.post("/v1/ask", json={"question": "How do I delete photos?"}).json()["related_corrections"] == []
    got = client.post("/v1/feedback/confirm", json={"answer_id": asked["id"], "correction_id": resume["id"]})
    assert got.status_code == 200, got.text
    assert got.json()["answer"] == "Run wombat backup --resume." and got.json()["correction"]["link_pending"] is True
    queue = client.get("/v1/corrections/suggestions", headers=auth).json()["suggestions"]
    assert queue[0]["answer_id"] == asked["id"] and queue[0]["confirmed_by_asker"] is True
