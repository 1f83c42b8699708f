import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from indexes import Chunk
from indexes.corrections import Correction, SqliteCorrectionStore
from indexes.faiss_index import FaissIndex
from pipelines.embed import HashEmbedder
from rag import Assistant, Config
from rag.corrections import (DEFAULT_MATCHER as DEFAULT, FEATURES, PREVIOUS_FEATURES, Matcher, calibrate, differing_words,
                             evaluate_matcher, features)
from rag.errors import ConflictError, RagError
from rag.llm import ScriptedChat
from tests.conftest import write_chunks
from tests.corrections_contract import CorrectionStoreContract

E = HashEmbedder()


class TestSqliteCorrectionStore(CorrectionStoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        s = SqliteCorrectionStore(tmp_path)
        yield s
        s.close()


def test_matcher_two_stages():
    m = Matcher(band=0.8, accept=0.95, p_min=0.5, weights=[-10.0, 12.0, 0.0])
    assert m.decide("a", "b", 0.96)[0] is True
    assert m.decide("a", "b", 0.79)[0] is False
    assert m.decide("a b", "a c", 0.9)[0] is True  # p = sigmoid(0.8) > 0.5
    assert m.decide("a b", "a c", 0.9, judge=lambda a, b: False) == (False, "in band, the LLM judge says the questions differ")


def test_frame_features_see_a_swapped_slot():
    embed = E.embed_queries
    a, b = "How do I set the batch size in map_batches?", "How do I set the number of CPUs in map_batches?"
    assert differing_words(a, b) == (["batch", "size"], ["number", "cpus"])
    cosine, frame, echo_min, lone_max, overlap = features(a, b, 0.5, embed)
    assert frame > 0.9 and frame > cosine  # without the swapped words, nearly the same question
    assert overlap == pytest.approx(2 / 6)  # "set" and "map_batches" of six content words
    assert features(a, b, 0.5, embed, PREVIOUS_FEATURES)[:4] == [cosine, frame, echo_min, lone_max]
    assert features(a, b, 0.5, embed, PREVIOUS_FEATURES)[4] == 4.0  # the count of differing words, as saved before
    # both compare by stem: inflections neither differ nor lower the overlap
    inflected = features("How do I resume the trials?", "How do I resume a trial?", 0.9, embed, PREVIOUS_FEATURES + ("overlap",))
    assert inflected[4:] == [0.0, 1.0]
    assert features("How do I?", "What is it?", 0.9, embed)[4] == 1.0  # no content words either side
    # the same words in another order are not the same question; nothing differs, all is shared
    swapped = "copy files from S3 to GCS", "copy files from GCS to S3"
    assert features(*swapped, 0.9, embed, PREVIOUS_FEATURES + ("overlap",)) == [0.9, 0.9, 0.0, 0.0, 0.0, 1.0]
    assert cosine == __import__("pytest").approx(float(embed([a])[0] @ embed([b])[0]), abs=1e-6)
    reworded = features(a, "Which argument controls how many rows go into each map_batches batch?", 0.5, embed)
    assert reworded[1] < frame
    assert features("How do I upgrade?", "how do I UPGRADE", 0.9, embed) == [0.9, 0.9, 0.0, 0.0, 1.0]


def test_a_matcher_saved_before_the_frame_features_still_decides():
    saved = Matcher.from_dict({"band": 0.8, "accept": 0.95, "p_min": 0.5, "weights": [-10.0, 12.0, 0.0]})
    assert saved.related_weights is None and saved.decide("a b", "a c", 0.9)[0] is True
    assert Matcher.from_dict(None).related_weights is not None  # the default has both classifiers
    legacy = Matcher(band=0.8, accept=0.95, p_min=0.5, weights=[-10.0, 12.0, 0.0])
    assert legacy.legacy and legacy.decide("a b", "a c", 0.9)[0] is True
    previous = Matcher.from_dict({"band": 0.5, "accept": 0.99, "p_min": 0.5, "weights": [0.0, 0.0, -10.0, 0.0, 0.0, 1.0]})
    assert previous.names == PREVIOUS_FEATURES and not previous.legacy  # 6 weights saved without names
    with pytest.raises(ValueError, match="embedding model"):
        previous.decide("set batch size", "set cpu count", 0.7)
    assert previous.decide("set batch size", "set cpu count", 0.7, embed=E.embed_queries)[0] is False  # same frame
    # the count of differing words it was saved with: a question reworded all through passes
    assert previous.decide("set batch size", "choose rows per group", 0.7, embed=E.embed_queries)[0] is True
    current = Matcher.from_dict({**previous.to_dict(), "feature_names": FEATURES})
    assert current.names == FEATURES and Matcher.from_dict(json.loads(json.dumps(current.to_dict()))) == current
    assert Matcher.from_dict(None).names == FEATURES  # the default weighs the overlap instead
    assert current.decide("set batch size", "choose rows per group", 0.7, embed=E.embed_queries)[0] is False


def test_a_saved_matcher_that_does_not_fit_says_so():
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="does not know .*word_vectors"):
        Matcher.from_dict({**DEFAULT, "feature_names": [*FEATURES[:4], "word_vectors"]})
    with pytest.raises(ConfigError, match="weights has 5 values for 5 features"):
        Matcher.from_dict({**DEFAULT, "weights": DEFAULT["weights"][:5]})
    with pytest.raises(ConfigError, match="related_weights has 7 values"):
        Matcher.from_dict({**DEFAULT, "related_weights": DEFAULT["related_weights"] + [0.0]})
    with pytest.raises(ConfigError, match="saved without feature names has 4 weights"):
        Matcher.from_dict({"band": 0.5, "accept": 1.0, "p_min": 0.5, "weights": [0.0] * 4})


def test_calibrate_picks_a_matcher_without_false_overrides():
    import numpy as np

    pairs = [{"a": f"q{i}", "b": f"p{i}", "match": i % 2 == 0} for i in range(20)]
    known = {(p["a"], p["b"]): 0.97 if p["match"] and i < 6 else (0.85 if p["match"] else 0.83)
             for i, p in enumerate(pairs)}

    def similarity(a, b):  # the questions of different pairs (unrelated) are far apart
        return np.array([known.get(pair, 0.2) for pair in zip(a, b)])

    result = calibrate(pairs, similarity, max_false_rate=0.0)
    assert result["false_override_rate"] == 0.0 and result["recall"] >= 0.3
    assert result["unrelated_pairs"] == 300 and result["unrelated_override_rate"] == 0.0
    ev = evaluate_matcher(Matcher.from_dict(result["matcher"]), pairs, similarity)
    assert ev["near_miss_override_rate"] == 0.0 and ev["override_precision"] == 1.0
    assert ev["unrelated_override_rate"] == 0.0
    framed = calibrate(pairs, similarity, max_false_rate=0.0, embed=E.embed_queries)
    assert len(framed["matcher"]["weights"]) == 6 and framed["false_override_rate"] == 0.0
    assert framed["matcher"]["feature_names"] == list(FEATURES) == framed["features"]
    again = evaluate_matcher(Matcher.from_dict(framed["matcher"]), pairs, similarity, embed=E.embed_queries)
    assert (again["paraphrase_recall"], again["near_miss_override_rate"]) == (framed["recall"], framed["false_override_rate"])
    assert result["matcher"]["feature_names"] == ["cosine", "jaccard"] == result["features"]
    assert len(framed["matcher"]["related_weights"]) == 6
    # the review queue starts where it keeps 90% of the paraphrases (7 of 10 at 0.85), or 0.1
    # below the band if that is lower (here the band is 0.85)
    assert framed["matcher"]["review_min"] == 0.85 and Matcher.from_dict(framed["matcher"]).review_floor == 0.75
    assert result["matcher"]["review_min"] == 0.85  # the same without the embedding model
    # the offers to the asker start lower, where 95% are (still at most the review floor)
    assert framed["matcher"]["offer_min"] <= framed["matcher"]["review_min"]
    assert Matcher.from_dict(framed["matcher"]).offer_floor <= 0.75
    # with nothing to keep unrelated questions out (no second classifier), the queue keeps its floor
    assert calibrate(pairs, similarity, max_false_rate=0.0, unrelated=0)["matcher"]["review_min"] is None


def test_the_review_queue_never_starts_above_the_judges_zone():
    """`review_min` moves the review queue's floor, never the LLM judge's zone, and only down."""
    def judge(a, b):
        raise AssertionError("the judge was asked")

    m = Matcher(band=0.67, accept=1.0, p_min=0.5, weights=[0.0] * 6, review_min=0.44)
    assert (m.review_floor, m.default_judge_floor) == (0.44, 0.57)
    assert m.assess("how do I upgrade wombat", "what brings wombat up to date", 0.5, judge, E.embed_queries)[0] is False
    assert Matcher(band=0.67, accept=1.0, p_min=0.5, weights=[0.0] * 6, review_min=0.7).review_floor == 0.57
    assert Matcher(band=0.67, accept=1.0, p_min=0.5, weights=[0.0] * 6).review_floor == 0.57  # saved before
    assert Matcher.from_dict(None).review_floor == 0.44  # the default, from its calibration
    assert Matcher.from_dict(None).offer_floor == 0.34  # and its offers to the asker
    # the offers' bar for "about something else" is lower, never higher, than the matcher's
    loose = Matcher(band=0.5, accept=1.0, p_min=0.5, weights=[0.0] * 6, related_weights=[0.0] * 6, related_min=0.7,
                    offer_related_min=0.3)  # the second classifier says 0.5 to anything
    assert loose.score("a b", "a c", 0.6, E.embed_queries) is None and loose.score("a b", "a c", 0.6, E.embed_queries, offer=True) == 0.5
    assert Matcher.from_dict({**loose.to_dict(), "offer_related_min": 0.9}).score("a b", "a c", 0.6, E.embed_queries, offer=True) is None
    assert Matcher(band=0.67, accept=1.0, p_min=0.5, weights=[0.0] * 6, review_min=0.44).offer_floor == 0.44  # saved before
    assert Matcher(band=0.67, accept=1.0, p_min=0.5, weights=[0.0] * 6, review_min=0.44, offer_min=0.5).offer_floor == 0.44


def test_opposite_words_never_make_the_same_question():
    from rag.corrections import opposed

    assert opposed("How do I enable TLS between nodes?", "How do I disable TLS between nodes?") == ("enable", "disable")
    assert opposed("How do I install the operator?", "How do I uninstall the operator?") == ("install", "uninstall")
    assert opposed("How fast does it scale up?", "How fast does it scale down?") == ("up", "down")
    assert opposed("How do I upload my code?", "How do I download my code?") == ("upload", "download")
    assert opposed("How do I read Parquet files?", "How do I write Parquet files?") == ("read", "write")
    assert opposed("How do I make sync faster?", "How do I make sync slower?") == ("faster", "slower")
    assert opposed("Can I use a bigger batch?", "Can I use a smaller batch?") == ("bigger", "smaller")
    assert opposed("How do I raise the limit?", "How do I lower the limit?") == ("raise", "lower")
    # a particle whose opposite is a stopword
    assert opposed("How do I turn on sync?", "How do I turn off sync?") == ("on", "off")
    assert opposed("How do I scale out the cluster?", "How do I scale in the cluster?") == ("out", "in")
    assert opposed("How do I find out the version?", "How do I find the version?") is None
    assert opposed("How do I fill in the form?", "How do I fill out the form?") is None  # after these verbs only
    # synonyms sit on the same side; any other swap is the classifier's to judge
    assert opposed("How do I read a checkpoint?", "How do I load a checkpoint?") is None
    assert opposed("How do I remove a column?", "How do I drop a column?") is None
    assert opposed("How do I set a higher timeout?", "How do I set a longer timeout?") is None
    assert opposed("How do I set the batch size?", "How do I set the number of CPUs?") is None
    # a question turned around by a word the other lacks may still ask the same, and so may one
    # that rewords more than the one swap
    assert opposed("How do I keep the connection open?", "How do I stop the connection from closing?") is None
    assert opposed("How do I open an issue again?", "How do I reopen a closed issue?") is None
    assert opposed("Why is the dashboard down?", "How is the dashboard up?") is None
    assert opposed("How do I uninstall the package?", "How do I remove the installed package?") is None
    assert opposed("How do I reduce memory usage?", "How do I make it more memory efficient?") is None
    assert opposed("How do I debug a worker?", "How do I bug a worker?") is None  # no prefix on 3 letters
    anything = Matcher(band=0.0, accept=0.0, p_min=0.0, weights=[0.0] * 6)
    assert anything.assess("How do I enable TLS?", "How do I disable TLS?", 0.99) == (
        False, "opposite words: 'enable' / 'disable'", None)
    assert anything.score("How do I enable TLS?", "How do I disable TLS?", 0.99) is None  # nor put up for review
    legacy = Matcher(band=0.0, accept=0.5, p_min=0.0, weights=[0.0] * 3)  # saved before the rule: decides as it did
    assert legacy.decide("How do I enable TLS?", "How do I disable TLS?", 0.99)[0] is True


def test_calibration_leaves_opposite_words_to_the_rule(monkeypatch):
    import numpy as np

    pairs = [pair for i in range(10) for pair in (
        {"a": f"How do I enable feature {i}?", "b": f"Can feature {i} be switched on?", "match": True},
        {"a": f"How do I enable feature {i}?", "b": f"How do I disable feature {i}?", "match": False})]

    known = {(p["a"], p["b"]): 0.9 if p["match"] else 0.99 for p in pairs}  # the opposite is the nearer,

    def similarity(a, b):  # as with a small embedding model; the questions of different pairs are far apart
        return np.array([known.get(pair, 0.2) for pair in zip(a, b)])

    import rag.corrections as corrections

    fitted, fit = [], corrections._fit_logistic
    monkeypatch.setattr(corrections, "_fit_logistic", lambda x, y: fitted.append(len(y)) or fit(x, y))
    result = calibrate(pairs, similarity, max_false_rate=0.0, embed=E.embed_queries)
    assert (result["recall"], result["false_override_rate"]) == (1.0, 0.0)
    assert fitted == [10, 10 + result["unrelated_pairs"]]  # the classifiers never see what the rule decides
    rows = evaluate_matcher(Matcher.from_dict(result["matcher"]), pairs, similarity, embed=E.embed_queries)["rows"]
    assert all(r["why"] == "opposite words: 'enable' / 'disable'" for r in rows if not r["match"])


def test_eval_counts_what_the_review_queue_would_show_below_the_band():
    import numpy as np

    pairs = [{"a": "how do I upgrade wombat", "b": "what brings wombat to its newest release", "match": True},
             {"a": "how do I upgrade wombat", "b": "how do I upgrade koala", "match": False}]
    known = {(p["a"], p["b"]): s for p, s in zip(pairs, (0.45, 0.35))}

    def similarity(a, b):
        return np.array([known.get(pair, 0.0) for pair in zip(a, b)])

    m = Matcher(band=0.5, accept=1.0, p_min=0.9, weights=[0.0] * 6)  # floor 0.4; the classifier: p = 0.5
    result = evaluate_matcher(m, pairs, similarity, embed=E.embed_queries)
    assert [(r["matched"], r["suggested"]) for r in result["rows"]] == [(False, True), (False, False)]
    assert (result["missed_paraphrases_suggested"], result["suggestions"], result["reviewed_recall"]) == (1.0, 1, 1.0)
    higher = evaluate_matcher(m, pairs, similarity, embed=E.embed_queries, review_floor=0.46)  # `rag eval --min-similarity`
    assert (higher["suggestions"], higher["reviewed_recall"], higher["review_floor"]) == (0, 0.0, 0.46)
    assert result["review_floor"] == 0.4  # the matcher's own


def test_unrelated_pairs_cross_the_questions_of_different_pairs():
    from rag.corrections import unrelated_pairs

    pairs = [{"a": f"q{i}", "b": f"p{i}{j}", "match": j == 0} for i in range(5) for j in range(3)]
    crossed = unrelated_pairs(pairs, limit=12)
    assert len(crossed) == 12 and all(not c["match"] and c["unrelated"] for c in crossed)
    assert all(c["b"][1] != c["a"][1] for c in crossed)  # never a question's own pair
    assert unrelated_pairs(pairs[:3], 10) == []  # one anchor: nothing to cross


@pytest.mark.parametrize("name, text", [
    ("ours.jsonl", '{"a": "A?", "b": "B?", "match": true}\n{"a": "A?", "b": "C?", "match": false}\n'),
    ("qqp.jsonl", '{"question1": "A?", "question2": "B?", "is_duplicate": 1}\n'
                  '{"question1": "A?", "question2": "C?", "is_duplicate": 0}\n'),
    ("paws.json", '[{"sentence1": "A?", "sentence2": "B?", "label": "1"}, '
                  '{"sentence1": "A?", "sentence2": "C?", "label": "0"}]'),
    ("grouped.jsonl", '\ufeff{"question": "A?", "answer": "x", "paraphrases": ["B?"], "near_misses": ["C?"]}\n'),
    ("triplets.jsonl", '{"anchor": "A?", "positive": "B?", "negative": "C?"}\n'),
    ("labelled.jsonl", '{"a": "A?", "b": "B?", "match": "paraphrase"}\n{"a": "A?", "b": "C?", "match": "near_miss"}\n'),
    ("qqp.tsv", "id\tquestion1\tquestion2\tis_duplicate\n1\tA?\tB?\t1\n2\tA?\tC?\t0\n"),
    ("pairs.csv", "a, b, match\nA?,B?,1.0\n\nA?,C?,0.0\n"),  # pandas writes 1.0; header names padded
    ("grouped.json", '\n  [{"anchor": "A?", "positives": ["B?"], "negatives": ["C?"]}]'),
])
def test_pair_files_in_the_shapes_public_paraphrase_sets_use(tmp_path, name, text):
    """`rag eval` and `calibrate` read our pairs and the usual public shapes: QQP, PAWS/MRPC,
    an anchor with its paraphrases and near misses, anchor-positive-negative triplets."""
    from rag.corrections import is_pair_file, load_pairs

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert is_pair_file(path)
    assert load_pairs(path) == [{"a": "A?", "b": "B?", "match": True}, {"a": "A?", "b": "C?", "match": False}]


@pytest.mark.parametrize("text, error", [
    ('{"a": "A?", "b": "B?", "match": true}\n{"question": "x", "source": "y"}\n', r"bad.jsonl:2: expected"),
    ('{"a": "A?", "b": "B?", "match": "maybe"}\n', r"bad.jsonl:1: a label of 'maybe'"),
    ('{"a": "A?", "b": " ", "match": true}\n', r"bad.jsonl:1: 'b' is blank"),
    ('{"question": "A?", "paraphrases": "B?"}\n', r"'paraphrases' is str, not a list"),
    ('{"a": "A?", "b": "B?", "match": 0.7}\n', r"a label of 0.7"),
    ('{"a": "A?", "b": "B?", "match": true}\n{oops\n', r"bad.jsonl:2: not JSON"),
    ('\n\n{"a": "A?", "b": "B?", "match": true}\n{"a": "A?", "b": "B?", "match": 2}\n', r"bad.jsonl:4: a label of 2"),
    ('{"question": "A?", "paraphrases": ["B?"], "positive": "C?"}\n', r"bad.jsonl:1: a record both a triplet and a group"),
    ('{"question": "A?", "paraphrases": [], "near_misses": []}\n', r"bad.jsonl holds no question pairs"),
])
def test_a_bad_pair_names_its_line(tmp_path, text, error):
    from rag.corrections import load_pairs

    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        load_pairs(path)


def test_csv_and_tsv_pair_files_name_the_line_and_keep_quotes(tmp_path):
    from rag.corrections import is_pair_file, load_pairs

    tsv = tmp_path / "pairs.tsv"  # GLUE, QQP and PAWS write TSV without quoting
    tsv.write_text('question1\tquestion2\tis_duplicate\n"Hamlet" is by whom?\tWho wrote "Hamlet"?\t1\n')
    assert load_pairs(tsv) == [{"a": '"Hamlet" is by whom?', "b": 'Who wrote "Hamlet"?', "match": True}]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,match\nA?,B?,1\n\nA?,,0\n")
    assert is_pair_file(bad)  # a CSV is never a question set: its errors are the pairs'
    with pytest.raises(ValueError, match=r"bad.csv:4: 'b' is blank"):
        load_pairs(bad)
    huge = tmp_path / "huge.csv"
    huge.write_text('a,b,match\nA?,"' + "x" * 200_000 + '",1\n')
    with pytest.raises(ValueError, match=r"huge.csv:\d+: not CSV"):
        load_pairs(huge)
    (tmp_path / "header.csv").write_text("a,b,match\n")
    with pytest.raises(ValueError, match="holds no question pairs"):
        load_pairs(tmp_path / "header.csv")
    array = tmp_path / "bad.json"
    array.write_text('[{"a": "A?", "b": "B?", "match": true}, {"a": "A?"}]')
    with pytest.raises(ValueError, match=r"bad.json: record 2: expected"):
        load_pairs(array)


def test_a_question_set_is_not_a_pair_file(tmp_path):
    from rag.corrections import is_pair_file

    (tmp_path / "qa.jsonl").write_text('{"question": "x", "source": "y"}\n')
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00junk")
    (tmp_path / "later.jsonl").write_text('{"a": "A?", "b": "B?", "match": true}\n{oops\n')
    (tmp_path / "blank.jsonl").write_text('{"a": "A?", "b": " ", "match": "maybe"}\n')
    # a pair file by its fields: what is wrong with its values is for load_pairs to name
    assert is_pair_file(tmp_path / "later.jsonl") and is_pair_file(tmp_path / "blank.jsonl")
    assert not any(is_pair_file(tmp_path / n) for n in ("qa.jsonl", "empty.jsonl", "bin.jsonl"))


def test_the_shipped_held_out_pairs_are_apart_from_the_calibration_pairs():
    """Each shipped set is anchors with paraphrases and near misses; the sets written after the
    default was designed (test3 to test7) ask nothing the calibration pairs nearly ask."""
    from pathlib import Path

    from rag.corrections import content_stems, expand, load_pairs

    data = Path(__file__).resolve().parent.parent / "evals" / "datasets"

    def words(text):
        return content_stems(expand(text))

    calibration = load_pairs(data / "corrections_calibration.jsonl")
    seen = [words(t) for t in {q for p in calibration for q in (p["a"], p["b"])}]
    for name in ("test", "test2", "test3", "test4", "test5", "test6", "test7"):
        pairs = load_pairs(data / f"corrections_{name}.jsonl")
        labels = {}
        for p in pairs:
            labels.setdefault(p["a"], set()).add(p["match"])
        assert len(pairs) >= 100 and all(v == {True, False} for v in labels.values()), name
        if name not in ("test", "test2"):  # written after the calibration was chosen
            for anchor in labels:
                a = words(anchor)
                assert max(len(a & b) / len(a | b) for b in seen) < 0.6, (name, anchor)


@pytest.fixture
def assistant(tmp_path):
    index = FaissIndex(tmp_path / "idx")
    write_chunks(index, E, {"docs/upgrade.md": [Chunk("docs/upgrade.md", "To upgrade wombat run wombat self-update", 0, "Wombat", ("Wombat",))]})
    llm = ScriptedChat("Use apt-get [1].")
    return Assistant(Config(index=str(tmp_path / "idx"), embedding_model="fake-hash"), index=index, embedder=E, llm=llm)


def test_correct_a_logged_answer_then_it_holds_verbatim(assistant):
    bad = assistant.ask("how do I upgrade wombat")
    assert bad.correction is None and assistant.corrections.get_answer(bad.id).answer == "Use apt-get [1]."
    assistant.feedback(bad.id, good=False, comment="apt-get is wrong")
    c = assistant.correct("Run `wombat self-update`.", answer_id=bad.id, reason="wrong tool", author="ana")
    assert c.bad_answer == "Use apt-get [1]." and c.sources == ["docs/upgrade.md"] and c.question == "how do I upgrade wombat"

    calls = len(assistant.llm.calls)
    again = assistant.ask("How do I upgrade Wombat?")  # same words, other case and punctuation
    assert again.text == "Run `wombat self-update`." and len(assistant.llm.calls) == calls  # no LLM call
    assert again.correction["id"] == c.id and again.correction["mode"] == "verbatim" and again.correction["author"] == "ana"
    assert again.correction["similarity"] > 0.99 and again.sources[0].path == f"correction:{c.id}"
    assert again.to_dict()["correction"]["created_at"] == c.created_at
    assert assistant.corrections.get_answer(again.id).correction_id == c.id

    other = assistant.ask("how do I delete photos")
    assert other.correction is None and other.to_dict()["correction"] is None

    assistant.corrections.update(c.id, active=False)
    assert assistant.ask("how do I upgrade wombat").correction is None


def test_guide_mode_gives_the_correction_to_the_model_as_source_one(assistant):
    assistant.config = assistant.config.model_copy(update={"corrections_mode": "guide"})
    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    answer = assistant.ask("how do I upgrade wombat")
    prompt = assistant.llm.calls[-1][-1]["content"]
    assert 'Excerpt [1] from "Human correction by ana' in prompt and "Excerpt [2]" in prompt
    assert answer.correction["mode"] == "guide" and answer.sources[0].path == f"correction:{c.id}"


def test_linked_questions_extend_a_correction_and_rule_it_out(assistant):
    """A paraphrase the matcher missed, linked same_as, gets the correction (and keeps getting
    its current answer); a question it was wrongly applied to, linked not_same_as, no longer
    does; links follow their correction when it is disabled or removed."""
    from click.testing import CliRunner

    from rag.cli import cli

    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    missed = assistant.ask("what is the procedure to bring wombat to its newest release")
    assert missed.correction is None
    link = assistant.correct(answer_id=missed.id, same_as=c.id, author="bo")
    assert (link.same_as, link.question, link.bad_answer) == (c.id, missed.question, "Use apt-get [1].")
    held = assistant.ask("What is the procedure to bring Wombat to its newest release?")
    assert held.correction["id"] == c.id and held.text == "Run wombat self-update."
    assert assistant.correct(question="bring wombat to the newest release, how?", same_as=link.id).same_as == c.id

    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.0, "weights": [0.0] * 6,
                                               "feature_names": list(FEATURES)})
    wrong = assistant.ask("how do I uninstall wombat")  # a matcher that takes anything overrides it
    assert wrong.correction["id"] == c.id
    assistant.feedback(wrong.id, good=False, comment="that is how to upgrade")
    bad = CliRunner().invoke(cli, ["feedback", "list", "--bad", "--index", str(assistant.index.location)]).stdout
    assert f"[answered by correction {c.id}]" in bad  # what the reviewer needs for --not-same-as
    ruled = assistant.correct(answer_id=wrong.id, not_same_as=c.id)
    assert assistant.ask("How do I uninstall Wombat?").correction is None
    assert assistant.ask("how do I upgrade wombat").correction["id"] == c.id

    with pytest.raises(RagError, match="takes its answer"):
        assistant.correct("x", question="q", same_as=c.id)
    with pytest.raises(RagError, match="with an answer"):
        assistant.correct(question="q", same_as=ruled.id)
    with pytest.raises(RagError, match="No correction 'nope'"):
        assistant.correct(question="q", not_same_as="nope")
    with pytest.raises(RagError, match="no sources of its own"):
        assistant.correct(question="q", same_as=c.id, sources=["docs/a.md"])

    index = str(assistant.index.location)
    out = CliRunner().invoke(cli, ["corrections", "pairs", "--index", index]).stdout
    pairs = [__import__("json").loads(line) for line in out.splitlines()]
    assert {(p["b"], p["match"]) for p in pairs} == {(missed.question, True), ("bring wombat to the newest release, how?", True),
                                                      (wrong.question, False)}
    assert {p["a"] for p in pairs} == {c.question}
    listed = CliRunner().invoke(cli, ["corrections", "list", "--index", index]).stdout
    assert f"[same as {c.id}]" in listed and f"[not same as {c.id}]" in listed

    assistant.corrections.update(c.id, active=False)
    assert assistant.ask("What is the procedure to bring Wombat to its newest release?").correction is None
    assistant.corrections.update(c.id, active=True)
    assert CliRunner().invoke(cli, ["corrections", "rm", c.id, "--index", index]).exit_code == 0
    assert assistant.corrections.list() == []


def test_rag_corrections_review_links_the_queue_one_question_at_a_time(assistant, tmp_path, monkeypatch):
    """y links a question as the same, n as another, s skips, q stops; the end of the input
    stops with exit status 1; a question settled since the queue was listed is passed over."""
    from click.testing import CliRunner

    from rag.cli import cli

    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    for q in ("what is the procedure to bring wombat to its newest release", "How don't I uninstall Wombat?",
              "how do I upgrade wombat on windows"):
        assistant.ask(q)
    queue = assistant.suggest_links()
    first, second, third = (s["question"] for s in queue)
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-hash")
    run = ["corrections", "review", "--index", str(tmp_path / "idx"), "--author", "bo"]

    def links():
        return {x.question: ("same" if x.same_as else "not same", x.author)
                for x in assistant.corrections.list(include_inactive=True) if x.linked_to == c.id}

    result = CliRunner().invoke(cli, run, input="y\n")  # then the input ends
    assert result.exit_code == 1 and "[1/3]" in result.output and "answers: Run wombat self-update." in result.output
    assert "Linked 1 same as, 0 not same as; skipped 0; the input ended with 2 left." in result.output
    assert links() == {first: ("same", "bo")}
    result = CliRunner().invoke(cli, run, input="N\ns\n")  # either case
    assert result.exit_code == 0 and "Linked 0 same as, 1 not same as; skipped 1." in result.output
    assert links() == {first: ("same", "bo"), second: ("not same", "bo")}
    result = CliRunner().invoke(cli, run, input="q\n")
    assert result.exit_code == 0 and "Linked 0 same as, 0 not same as; skipped 0." in result.output
    assert [s["question"] for s in assistant.suggest_links()] == [third]
    # listed before the two links were made (another reviewer's): those two are passed over
    monkeypatch.setattr(Assistant, "suggest_links", lambda self, **kw: queue)
    result = CliRunner().invoke(cli, run, input="s\n")
    assert result.exit_code == 0 and "skipped 1; 2 settled meanwhile." in result.output
    assert repr(first) not in result.output and len(links()) == 2


def test_a_later_link_of_a_question_replaces_the_earlier_one(assistant):
    """Two reviewers, or one who changed their mind: the latest decision on a question stands."""
    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")

    def links():
        return [(x.question, x.author, "same" if x.same_as else "not same")
                for x in assistant.corrections.list(include_inactive=True) if x.linked_to == c.id]

    assistant.correct(question="How do I update Wombat on Windows?", same_as=c.id, author="bo")
    assert links() == [("How do I update Wombat on Windows?", "bo", "same")]
    assistant.correct(question="how do i update wombat on windows", not_same_as=c.id, author="cy")
    assert links() == [("how do i update wombat on windows", "cy", "not same")]
    assert assistant.find_correction("How do I update Wombat on Windows?") is None
    assistant.correct(question="How do I update Wombat?", same_as=c.id, author="bo")  # another question: its own link
    assert len(links()) == 2


def test_two_reviewers_linking_one_question_at_once_leave_one_link(assistant, monkeypatch):
    """Another reviewer's link lands between this one's write and its clean-up: the newest link
    (by time, then id) is the one that stays, and a contrary decision is reported, not lost
    silently. A later decision wins whatever the clocks say."""
    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    question, store = "How do I update Wombat on Windows?", assistant.corrections
    other = Correction(question=question, answer="", author="bo", same_as=c.id, model=c.model,
                       created_at="2999-01-01T00:00:00.000000+00:00")  # a clock far ahead
    add = store.add

    def add_and_race(correction, embedding):
        add(correction, embedding)
        if correction.linked_to and correction.id != other.id and store.get(other.id) is None:
            add(other, embedding)  # the other reviewer's write, after this one read the links

    monkeypatch.setattr(store, "add", add_and_race)
    with pytest.raises(ConflictError, match=r"Another reviewer \(bo\) linked this question same_as"):
        assistant.correct(question=question, not_same_as=c.id, author="cy")
    assert [x.id for x in assistant.linked_questions(c.id, question)] == [other.id]
    store.remove(other.id)
    assert assistant.correct(question=question, same_as=c.id, author="cy").id == other.id  # the same decision: theirs
    monkeypatch.setattr(store, "add", add)
    later = assistant.correct(question=question, not_same_as=c.id, author="cy")  # after theirs, behind their clock
    assert later.created_at > other.created_at and [x.id for x in assistant.linked_questions(c.id, question)] == [later.id]
    assert assistant.find_correction(question) is None


def test_imported_times_are_stored_as_the_store_writes_them():
    from indexes.corrections import utc_stamp

    assert utc_stamp("2026-11-27T10:00:00Z") == "2026-11-27T10:00:00.000000+00:00"
    assert utc_stamp("2026-11-27T12:00:00+02:00") == utc_stamp("2026-11-27 10:00") == "2026-11-27T10:00:00.000000+00:00"
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        utc_stamp("yesterday")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        utc_stamp("0001-01-01T00:30:00+01:00")  # before year 1 in UTC
    # a stamp from the future would settle every later thumbs down: refused, or, a little
    # ahead (another machine's clock), stored as now
    current = datetime.now(timezone.utc)
    for ahead in (timedelta(minutes=6), timedelta(days=365)):
        with pytest.raises(ValueError, match="in the future"):
            utc_stamp((current + ahead).isoformat())
    with pytest.raises(ValueError, match="in the future"):
        utc_stamp((current + timedelta(minutes=6)).replace(tzinfo=None).isoformat())  # no zone: UTC
    stamped = utc_stamp((current + timedelta(minutes=1)).isoformat())
    assert current.isoformat(timespec="microseconds") <= stamped <= datetime.now(timezone.utc).isoformat(timespec="microseconds")


def test_an_import_refuses_a_time_from_the_future_by_its_line_and_runs_again_once_fixed(assistant, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import cli

    good = Correction("how do I upgrade wombat", "Run wombat self-update.", created_at="2026-11-01T10:00:00Z")
    ahead = Correction("how do I remove wombat", "Run wombat uninstall.", created_at="2999-01-01T00:00:00Z")
    lines = [json.dumps({k: v for k, v in vars(c).items() if k != "model"}) for c in (good, ahead)]
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-hash")
    run = ["corrections", "import", "-", "--index", str(tmp_path / "idx")]
    result = CliRunner().invoke(cli, run, input="\n".join(lines) + "\n")
    assert result.exit_code == 1 and "line 2: created_at '2999-01-01T00:00:00Z' is in the future" in result.output
    assert [c.id for c in assistant.corrections.list()] == [good.id]  # the lines before it are in
    fixed = lines[1].replace("2999-01-01T00:00:00Z", "2026-11-02T10:00:00Z")
    result = CliRunner().invoke(cli, run, input=lines[0] + "\n" + fixed + "\n")
    assert result.exit_code == 0 and "Imported 1 correction; 1 already there or settled." in result.output
    assert {c.id: c.created_at for c in assistant.corrections.list()} == {
        good.id: "2026-11-01T10:00:00.000000+00:00", ahead.id: "2026-11-02T10:00:00.000000+00:00"}


def test_an_import_refuses_what_correct_would_refuse_by_its_line(assistant, tmp_path, monkeypatch):
    """An import checks each line as `correct` checks what it writes, names the line, keeps
    the lines before it, and can run again: what is there already is skipped."""
    from click.testing import CliRunner

    from rag.cli import cli

    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-hash")
    run = ["corrections", "import", "-", "--index", str(tmp_path / "idx")]
    good = json.dumps({"id": "c1", "question": "how do I upgrade wombat", "answer": "Run wombat self-update."})
    bad_lines = {
        "not JSON": ("{oops", "line 2: Expecting property name"),
        "not an object": ("[1, 2]", "line 2: expected a JSON object"),
        "blank question": ('{"question": "   ", "answer": "x"}', "line 2: a correction needs a question"),
        "no answer": ('{"question": "q?"}', "line 2: a correction needs its answer"),
        "empty answer": ('{"question": "q?", "answer": " "}', "line 2: a correction needs its answer"),
        "sources as text": ('{"question": "q?", "answer": "a", "sources": "docs/a.md"}',
                            'line 2: sources must be a list of paths, not "docs/a.md"'),
        "active as a number": ('{"question": "q?", "answer": "a", "active": 0}', "line 2: active must be true or false"),
        "a number for an id": ('{"id": 5, "question": "q?", "answer": "a"}', "line 2: id must be text, not 5"),
        "both links": ('{"question": "q?", "answer": "", "same_as": "c1", "not_same_as": "c1"}', "not both"),
        "a link with an answer": ('{"question": "q?", "answer": "a", "same_as": "c1"}', "its answer must be empty"),
    }
    for name, (line, message) in bad_lines.items():
        result = CliRunner().invoke(cli, run, input=good + "\n" + line + "\n")
        assert result.exit_code == 1 and message in result.output, (name, result.output)
    assert [c.id for c in assistant.corrections.list()] == ["c1"]  # the line before each, once
    # a byte order mark, control characters and a stray right-to-left override are no trouble
    lines = ["\ufeff" + good, json.dumps({"question": "how do I remove\u0000 wombat\u202e", "answer": "Run it.",
                                          "sources": ["docs/a.md"]}),
             json.dumps({"question": "is wombat free", "answer": "", "same_as": "c1"})]
    result = CliRunner().invoke(cli, run, input="\n".join(lines) + "\n")
    assert result.exit_code == 0 and "Imported 2 corrections; 1 already there or settled." in result.output, result.output
    removed = next(c for c in assistant.corrections.list() if c.sources)
    assert (removed.question, removed.sources) == ("how do I remove wombat", ["docs/a.md"])
    # a line without an id is there already when its question, answer and link are (its id
    # comes from them: two imports of it at once store it once)
    result = CliRunner().invoke(cli, run + ["--json"], input="\n".join(lines[1:]) + "\n")
    assert json.loads(result.output) == {"imported": 0, "already_there": 2}
    twice = json.dumps({"question": "How do I pause Wombat?", "answer": "Run wombat pause."})
    result = CliRunner().invoke(cli, run + ["--json"], input=f"{twice}\n{twice}\n")
    assert json.loads(result.output) == {"imported": 1, "already_there": 1}
    # a link listed before its correction (export lists links last; older files may not)
    result = CliRunner().invoke(cli, run + ["--json"], input="\n".join([
        json.dumps({"id": "l2", "question": "is wombat libre", "answer": "", "same_as": "c2"}),
        json.dumps({"id": "c2", "question": "what licence does wombat use", "answer": "MIT."})]) + "\n")
    assert json.loads(result.output) == {"imported": 2, "already_there": 0}
    assert assistant.corrections.get("l2").same_as == "c2"
    # a link to a link is not a correction to link to: skipped, as one to a missing correction
    link = next(c for c in assistant.corrections.list() if c.same_as)
    chained = json.dumps({"question": "is wombat gratis", "answer": "", "same_as": link.id})
    result = CliRunner().invoke(cli, run + ["--json"], input=chained + "\n")
    assert json.loads(result.output)["skipped_links"] and len(assistant.corrections.list()) == 6


def test_a_new_correction_of_a_question_replaces_the_old_and_links_must_make_sense(assistant):
    from rag.errors import RagError

    old = assistant.correct("Run apt upgrade.", question="How do I upgrade Wombat?")
    link = assistant.correct(question="what is the procedure to bring wombat to its newest release", same_as=old.id)
    not_it = assistant.correct(question="How do I upgrade Wombat plugins?", not_same_as=old.id)
    new = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat")  # the same question
    assert {c.id for c in assistant.corrections.list(include_inactive=False)} == {new.id, link.id, not_it.id}
    # the questions reviewers linked to the old one now go with the new one
    assert (assistant.corrections.get(link.id).same_as, assistant.corrections.get(not_it.id).not_same_as) == (
        new.id, new.id)
    assert assistant.find_correction(link.question)[0].id == new.id
    assistant.corrections.update(new.id, active=False)  # disabling the newer does not bring back the stale one
    assert assistant.find_correction("How do I upgrade Wombat?") is None
    assistant.corrections.update(new.id, active=True)
    # replaced again, by answer id: a question linked to both keeps the newest's link only
    given = assistant.ask("How do I upgrade Wombat?")
    assistant.correct(question=link.question, same_as=new.id)  # already moved: the latest link stands
    newest = assistant.correct("Run wombat upgrade.", answer_id=given.id)
    assert given.correction["id"] == new.id and newest.sources == []  # the correction it replaces is no source
    links = [c for c in assistant.corrections.list() if c.linked_to]
    assert sorted((c.question, c.linked_to) for c in links) == sorted(
        [(link.question, newest.id), (not_it.question, newest.id)])
    with pytest.raises(RagError, match="needs a question"):
        assistant.correct("x", question="   ")
    with pytest.raises(RagError, match="needs the question"):
        assistant.correct(question=" ", same_as=newest.id)
    with pytest.raises(RagError, match="own question: to stop it answering, disable it"):
        assistant.correct(question="How do I upgrade Wombat?", not_same_as=newest.id)
    with pytest.raises(RagError, match="own question: it already answers it"):
        assistant.correct(question="how do i upgrade wombat", same_as=newest.id)
    with pytest.raises(RagError, match=f"Correction {old.id} is disabled: enable it first"):
        assistant.correct(question="Is Wombat free?", same_as=old.id)
    # a question that is not a replaced correction's is not its successor's either (the same question)
    assert assistant.correct(question="Is Wombat free?", not_same_as=old.id).not_same_as == newest.id


def test_the_queue_suggests_the_nearest_plausible_correction(assistant, monkeypatch):
    """Of the corrections a missed question is near, the queue names the nearest the classifier
    finds plausible, not the one it likes best: with every correction of a held-out set
    stored, the likeliest was another correction's for 7% to 40% of the missed paraphrases."""
    from rag.corrections import Matcher

    upgrade = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat")
    remove = assistant.correct("Run wombat uninstall.", question="how do I remove wombat plugins")
    asked = "how do I upgrade wombat plugins"
    v = E.embed_queries([asked, upgrade.question, remove.question])
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) > 0.3
    likes = {upgrade.question: 0.4, remove.question: 0.9}  # the classifier prefers the farther one
    monkeypatch.setattr(Matcher, "assess", lambda self, a, b, sim, judge=None, embed=None: (False, "no", likes.get(a, 0.0)))
    monkeypatch.setattr(Matcher, "score", lambda self, a, b, sim, embed=None: likes.get(a, 0.0))
    answer = assistant.ask(asked)
    assert answer.correction is None
    [suggestion] = assistant.suggest_links(min_similarity=0.3)
    assert (suggestion["correction_id"], suggestion["probability"]) == (upgrade.id, 0.4)
    # turned down for that one, it comes back for the next (benchmarks/queue_all_stored.py --rounds)
    assistant.correct(answer_id=answer.id, not_same_as=upgrade.id)
    assert [s["correction_id"] for s in assistant.suggest_links(min_similarity=0.3)] == [remove.id]
    assistant.correct(answer_id=answer.id, not_same_as=remove.id)
    assert assistant.suggest_links(min_similarity=0.3) == []


def test_a_correction_cites_files_as_ingest_keys_them(assistant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nText.")
    c = assistant.correct("An answer.", question="What is a?", sources=[
        "./docs/a.md", str(tmp_path / "docs" / "a.md"), "docs/./a.md#usage", "https://example.com/a", " "])
    assert c.sources == ["docs/a.md", "docs/a.md#usage", "https://example.com/a"]
    assert assistant.corrections.flag_for_review(["docs/a.md"], "changed") == [c.id]
    cited = assistant.correct("Run setup.", question="How do I set up wombat?", sources=["docs/a.md"])
    assistant.corrections.flag_for_review(["docs/a.md"], "changed")
    answer = assistant.ask("How do I set up wombat?")  # still answered, and said to wait for a reviewer
    assert answer.correction["id"] == cited.id and answer.correction["review"] is True
    assistant.corrections.update(cited.id, review=None)  # rag corrections enable: a reviewer checked it
    assert assistant.ask("How do I set up wombat?").correction["review"] is False


def test_the_cli_says_what_a_correction_replaced_and_wants_one_verdict(assistant, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import cli

    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-hash")
    index = ["--index", str(tmp_path / "idx")]
    first = assistant.correct("Run apt upgrade.", question="How do I upgrade Wombat?")
    result = CliRunner().invoke(cli, ["correct", "--question", "how do I upgrade wombat", "--answer", "Self-update."]
                                + index)
    assert result.exit_code == 0 and f"It replaces {first.id} (disabled)" in result.output, result.output
    second = assistant.corrections.list(include_inactive=False)[0].id
    result = CliRunner().invoke(cli, ["correct", "--question", "How do I upgrade Wombat?", "--answer",
                                    "Self-update.", "--source", "nowhere.md", "--json"] + index)
    made = json.loads(result.stdout)  # with --json the notes are said on standard error too
    assert made["replaced"] == [second] and made["unindexed_sources"] == ["nowhere.md"]
    assert "nowhere.md is not a file in the index" in result.stderr
    answer = assistant.ask("how do I upgrade wombat")
    for flags in ([], ["--good", "--bad"]):
        result = CliRunner().invoke(cli, ["feedback", "add", answer.id, *flags] + index)
        assert result.exit_code == 2 and "--good or --bad (one of them)" in result.output
    assert CliRunner().invoke(cli, ["feedback", "add", answer.id, "--bad"] + index).exit_code == 0
    assert [f.good for f in assistant.corrections.list_feedback()] == [False]


def test_a_store_written_with_sources_as_text_still_reads():
    from indexes.corrections import _as_sources

    assert _as_sources('"docs/a.md"') == ["docs/a.md"] and _as_sources("docs/a.md") == ["docs/a.md"]
    assert _as_sources('["docs/a.md"]') == ["docs/a.md"] and _as_sources(["b"]) == ["b"] and _as_sources(None) == []


def test_a_same_as_link_holds_in_its_own_words_only(assistant):
    """A reviewer vouched for the linked wording, not for what the classifier would take for
    a rewording of it (the near misses of a paraphrase look like rewordings of it)."""
    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat")
    link = "what is the procedure to bring wombat to its newest release"
    assistant.correct(question=link, same_as=c.id)
    other = "what is the procedure to bring wombat to its newest version"
    v = E.embed_queries([c.question, link, other])
    to_anchor, to_link = float(v[0] @ v[2]), float(v[1] @ v[2])
    assert to_anchor < to_link
    band = (to_anchor + to_link) / 2  # the classifier (p = 0.5) accepts any pair in the band: only the link's is
    assistant.corrections.set_meta("matcher", {"band": band, "accept": 1.0, "p_min": 0.0, "weights": [0.0] * 6})
    assert assistant.find_correction(other) is None
    assert assistant.find_correction("What is the procedure to bring Wombat to its newest releases?")[0].id == c.id
    asked = assistant.ask(other)  # the rewording goes to the review queue instead
    assert [(s["answer_id"], s["correction_id"], s["nearest_question"])
            for s in assistant.suggest_links(min_similarity=band)] == [(asked.id, c.id, link)]


def test_wrong_answers_wait_for_a_reviewer_one_per_question_until_settled(assistant):
    """`wrong_answers` (the reviewers' page, `rag feedback list --open`): answers marked wrong,
    newest first, one per question, until a correction or a link settles the question."""
    def waiting():
        return [(w["question"], w["reports"]) for w in assistant.wrong_answers()]

    first = assistant.ask("How do I purge Wombat's cache?")
    again = assistant.ask("how do i purge wombat's cache")  # the same question
    other = assistant.ask("Where does wombat keep its logs?")
    fine = assistant.ask("what is wombat")
    for answer in (first, again, other):
        assistant.feedback(answer.id, good=False)
    assistant.feedback(fine.id, good=True)
    assert waiting() == [("Where does wombat keep its logs?", 1), ("how do i purge wombat's cache", 2)]
    assert len(assistant.wrong_answers(limit=1)) == 1 and len(assistant.wrong_answers(scan=1)) == 1
    # a correction written for the question settles it, through any of its answers or none
    assistant.correct("Run wombat cache --purge.", question="How do I purge wombat's cache")
    assert waiting() == [("Where does wombat keep its logs?", 1)]
    # an answer a correction gave, marked wrong, waits although the correction still answers it
    logs = assistant.correct("In /var/log/wombat.", answer_id=other.id)
    assert waiting() == []
    wrong = assistant.ask("where does wombat keep its logs")
    assert wrong.correction["id"] == logs.id
    assistant.feedback(wrong.id, good=False, comment="that was 1.x")
    assert [(w["answer_id"], w["correction_id"], w["comment"]) for w in assistant.wrong_answers()] == [
        (wrong.id, logs.id, "that was 1.x")]
    # the reviewer writes the right answer: it replaces that correction for the question (the same
    # words: the wrong one is disabled)
    fixed = assistant.correct("In ~/.wombat/logs since 2.0.", answer_id=wrong.id)
    assert waiting() == [] and assistant.corrections.get(logs.id).active is False
    assert assistant.ask("Where does Wombat keep its logs?").correction["id"] == fixed.id
    # ... or, asked in other words, it is linked not_same_as the correction that answered it
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 0.0, "p_min": 0.5, "weights": [0.0] * 6})  # all match
    where = assistant.ask("which folder holds the wombat log files")
    gave = where.correction["id"]
    assistant.feedback(where.id, good=False)
    mine = assistant.correct("In the folder of your choice: wombat --log-dir.", answer_id=where.id)
    assert assistant.ask(where.question).correction["id"] == mine.id and assistant.corrections.get(gave).active
    assert [c.not_same_as for c in assistant.linked_questions(gave, where.question)] == [gave]
    # a not_same_as link settles only an answer that correction gave, not the model's own
    for c in assistant.corrections.list():  # (a disabled correction settles nothing: those wait again)
        assistant.corrections.update(c.id, active=False)
    upgrade = assistant.ask("how can I upgrade wombat")
    assistant.feedback(upgrade.id, good=False)
    assistant.correct(answer_id=upgrade.id, not_same_as=fixed.id)  # (a reviewer could, from the queue)
    assert waiting()[0] == ("how can I upgrade wombat", 1)
    # a model answer that a correction written since answers (another wording) is settled too
    assistant.correct("Run wombat self-update.", question="upgrading wombat")
    assert "how can I upgrade wombat" not in dict(waiting())


def test_suggested_links_are_questions_a_correction_nearly_matched(assistant):
    """The review queue for the matcher's misses: logged questions whose nearest correction
    was close but turned down, thumbs down first, each once; a link either way settles a
    question (the CLI: test_cli.py)."""
    assert assistant.suggest_links() == []
    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    reject = {"accept": 1.0, "p_min": 0.999}  # the classifier turns every pair down, with p = 0.5
    assistant.corrections.set_meta("matcher", {"band": 0.0, "weights": [0.0] * 6, **reject})
    reworded = assistant.ask("what is the procedure to bring wombat to its newest release")
    first = assistant.ask("How don't I uninstall Wombat?")
    again = assistant.ask("how do not i  uninstall wombat")  # the same question: suggested once, its newest answer
    assert reworded.correction is None and again.correction is None
    assistant.feedback(first.id, good=False)  # thumbs down on an earlier answer to it count
    got = assistant.suggest_links()
    assert [(s["answer_id"], s["bad_feedback"], s["times_asked"], s["correction_id"], s["probability"]) for s in got] == [
        (again.id, True, 2, c.id, 0.5), (reworded.id, False, 1, c.id, 0.5)]
    assert got[0]["correction_question"] == c.question and got[0]["similarity"] > 0
    assert len(assistant.suggest_links(limit=1)) == 1
    # then the likeliest: here the classifier's probability grows with the similarity
    assistant.corrections.set_meta("matcher", {"band": 0.0, "weights": [0.0, 5.0, 0, 0, 0, 0], **reject})
    unflagged = [s for s in assistant.suggest_links() if not s["bad_feedback"]]
    assistant.feedback(again.id, good=True)
    assert [s["probability"] for s in unflagged] == sorted((s["probability"] for s in unflagged), reverse=True)
    # below the band too, down to the floor: the classifier is asked there for the queue alone
    assistant.corrections.set_meta("matcher", {"band": 0.99, "weights": [0.0] * 6, **reject})
    assert [s["answer_id"] for s in assistant.suggest_links(min_similarity=0.0)] == [again.id, reworded.id]
    assert assistant.suggest_links() == [] and assistant.ask(reworded.question).correction is None  # floor 0.89
    # a calibrated matcher sets its own floor, where its paraphrases were (`review_min`)
    assistant.corrections.set_meta("matcher", {"band": 0.99, "weights": [0.0] * 6, "review_min": 0.0, **reject})
    assert [s["question"] for s in assistant.suggest_links()] == [again.question, reworded.question]
    assistant.corrections.set_meta("matcher", {"band": 0.0, "weights": [0.0] * 6, **reject})

    assistant.correct(answer_id=reworded.id, same_as=c.id)
    assistant.correct(answer_id=again.id, not_same_as=c.id)
    assert assistant.suggest_links() == []
    # a question close to a not_same_as link is no evidence for the correction it rules out
    near_ruled = assistant.ask("how do not i uninstall wombat completely")
    assert [(s["answer_id"], s["nearest_question"]) for s in assistant.suggest_links()] == [(near_ruled.id, c.question)]
    # a disabled correction is suggested by neither its question nor its links
    assistant.corrections.update(c.id, active=False)
    assert all(s["answer_id"] != near_ruled.id and s["correction_id"] != c.id for s in assistant.suggest_links())
    assistant.corrections.update(c.id, active=True)
    # a matcher saved before the frame features has no same-words rule: the link itself settles
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 3})
    assert {s["answer_id"] for s in assistant.suggest_links()} <= {near_ruled.id}
    # a question a correction written since answers is no miss any more, whichever correction was near
    assistant.corrections.set_meta("matcher", None)
    assert [s["answer_id"] for s in assistant.suggest_links(min_similarity=-1.0)] == [near_ruled.id]
    purge = assistant.correct("Run wombat purge.", question=near_ruled.question)
    assert [(s["answer_id"], s["correction_id"]) for s in assistant.suggest_links(min_similarity=-1.0)] == [
        (again.id, purge.id)]  # a new correction's own near questions are


def test_the_asker_confirms_a_related_correction_and_a_reviewer_settles_it(assistant):
    """A question no correction applies to, but one is near (the review queue's pick), names it
    (`related_corrections`); the asker's yes gives them its answer and writes a same_as link that
    waits for a reviewer, first in the review queue, until a reviewer links the question."""
    from rag.corrections import link_pairs

    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    reject = {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6}  # turns every pair down, p = 0.5
    assistant.corrections.set_meta("matcher", reject)
    asked = assistant.ask("what is the procedure to bring wombat to its newest release")
    assert asked.correction is None and asked.text == "Use apt-get [1]."
    [offer] = asked.to_dict()["related_corrections"]
    assert (offer["id"], offer["question"], offer["probability"]) == (c.id, c.question, 0.5) and offer["similarity"] > 0
    with pytest.raises(ConflictError, match="not one offered"):  # only what the matcher offers
        assistant.confirm(asked.id, "nope")

    got = assistant.confirm(asked.id, c.id, "zoe")
    assert got.text == "Run wombat self-update." and got.question == asked.question and got.model == "human-correction"
    assert got.correction["id"] == c.id and got.correction["confirmed_by_asker"] and got.correction["link_pending"]
    assert assistant.corrections.get_answer(got.id).correction_id == c.id
    with pytest.raises(ConflictError, match="already a correction's answer"):
        assistant.confirm(got.id, c.id)
    link = assistant.corrections.get(got.correction["link"])
    assert link.pending and (link.same_as, link.author, link.replaces_answer_id) == (c.id, "zoe", asked.id)
    # it waits for a reviewer: it does not apply yet, heads the queue, and is no calibration pair
    assert assistant.ask(asked.question).correction is None
    other = assistant.ask("How don't I uninstall Wombat?")
    assistant.feedback(other.id, good=False)
    assert [(s["answer_id"], s["confirmed_by_asker"]) for s in assistant.suggest_links()] == [
        (asked.id, True), (other.id, False)]
    assert link_pairs(assistant.corrections) == []
    # a reviewer's yes is an active link in its place
    approved = assistant.correct(answer_id=asked.id, same_as=c.id, author="ana")
    assert not approved.pending and approved.active and assistant.corrections.get(link.id) is None
    assert assistant.ask(asked.question).correction["id"] == c.id
    assert [s["answer_id"] for s in assistant.suggest_links()] == [other.id]
    # a reviewer's no is never undone by an asker: the correction is not offered for it any more
    ruled = assistant.correct(answer_id=other.id, not_same_as=c.id)
    again = assistant.ask(other.question)
    assert again.correction is None and again.related_corrections == []
    with pytest.raises(ConflictError, match="not one offered"):
        assistant.confirm(again.id, c.id)
    assert assistant.corrections.get(ruled.id).active and assistant.corrections.get(approved.id).active


def test_the_offer_floor_is_a_setting(assistant):
    """corrections_offer_floor: offers start at that similarity instead of the matcher's floor."""
    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat")
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    question = "what is the procedure to bring wombat to its newest release"
    [offer] = assistant.related_corrections(question)
    assert offer["id"] == c.id and offer["similarity"] < 0.99
    assistant.config = assistant.config.model_copy(update={"corrections_offer_floor": 0.99})
    assert assistant.related_corrections(question) == []
    asked = assistant.ask(question)
    with pytest.raises(ConflictError, match="not one offered"):  # what is not offered cannot be confirmed
        assistant.confirm(asked.id, c.id)


def test_askers_links_never_outrank_reviewers(assistant):
    """An asker's link goes when a reviewer answers the question (a correction of it, or a
    same_as link elsewhere); it never replaces a reviewer's link; it is no calibration pair and
    settles no complaint, even where askers' links apply at once (listed first in the queue
    for a reviewer to check); and with no offers, nothing can be confirmed."""
    from rag.corrections import link_pairs

    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    d = assistant.correct("Run wombat purge.", question="how do I remove wombat completely", author="ana")
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    asked = assistant.ask("what is the procedure to bring wombat to its newest release")
    waiting = assistant.confirm(asked.id, c.id).correction["link"]
    # a reviewer writes the question its own answer: the asker's link is moot
    mine = assistant.correct("Use the installer.", answer_id=asked.id, author="bo")
    assert assistant.corrections.get(waiting) is None
    assert all(s["answer_id"] != asked.id for s in assistant.suggest_links())
    assistant.corrections.update(mine.id, active=False)
    # a reviewer links it same_as another correction: the asker's link to the first goes
    waiting = assistant.confirm(assistant.ask(asked.question).id, c.id).correction["link"]
    assistant.correct(answer_id=asked.id, same_as=d.id)
    assert assistant.corrections.get(waiting) is None
    # an asker's link never replaces a reviewer's (one written between the offer and the confirmation)
    other = assistant.ask("wombat: how to get the newest release installed")
    reviewer = assistant.correct(answer_id=other.id, not_same_as=c.id)
    with pytest.raises(ConflictError, match="decided on this question meanwhile"):
        assistant._link(None, other.id, None, None, "asker", c.id, None, asker="review")
    assert [link.id for link in assistant.linked_questions(c.id, other.question)] == [reviewer.id]

    # askers' links that apply at once: first in the queue, no calibration pair, no settled complaint
    assistant.config = assistant.config.model_copy(update={"corrections_confirmed": "apply"})
    third = assistant.ask("upgrading wombat to the latest version, how?")
    assistant.feedback(third.id, good=False)
    link = assistant.corrections.get(assistant.confirm(third.id, c.id).correction["link"])
    assert link.active and link.unreviewed and not link.pending
    assert assistant.ask(third.question).correction["id"] == c.id
    first = assistant.suggest_links()[0]
    assert (first["answer_id"], first["asker_link"], first["asker_link_applies"]) == (third.id, link.id, True)
    assert all(p["b"] != third.question for p in link_pairs(assistant.corrections))
    assert [f["answer_id"] for f in assistant.wrong_answers()] == [third.id]
    assistant.corrections.update(link.id, active=True, review=None)  # rag corrections enable: checked
    assert any(p["b"] == third.question for p in link_pairs(assistant.corrections))
    assert assistant.wrong_answers() == [] and all(s["answer_id"] != third.id for s in assistant.suggest_links())

    # a reviewer's no replaces an asker's yes; two askers' links of one question: the reviewer's
    # yes to one settles the other, and the review loop passes it over
    from click.testing import CliRunner

    from rag.cli import cli

    assistant.config = assistant.config.model_copy(update={"corrections_confirmed": "review"})
    fifth = assistant.ask("wombat latest release: the way to install it")
    waiting = assistant.confirm(fifth.id, c.id).correction["link"]
    assistant.correct(answer_id=fifth.id, not_same_as=c.id)
    assert assistant.corrections.get(waiting) is None
    assert [x.not_same_as for x in assistant.linked_questions(c.id, fifth.question)] == [c.id]
    sixth = assistant.ask("wombat: getting rid of old versions and upgrading")
    offered = [r["id"] for r in sixth.related_corrections]
    assert set(offered) == {c.id, d.id}
    for target in offered:
        assistant.confirm(sixth.id, target)
    both = [s for s in assistant.suggest_links() if s["question"] == sixth.question]
    assert {s["correction_id"] for s in both} == {c.id, d.id} and all(s["confirmed_by_asker"] for s in both)
    result = CliRunner().invoke(cli, ["corrections", "review", "--index", str(assistant.index.location), "--author", "bo",
                                      "--limit", "2"], input="y\ny\n", env={"RAG_EMBEDDING_MODEL": "fake-hash"})
    assert result.exit_code == 0 and "Linked 1 same as, 0 not same as; skipped 0; 1 settled meanwhile." in result.output
    assert len([x for x in assistant.corrections.list(True) if x.question == sixth.question and x.same_as]) == 1

    assistant.config = assistant.config.model_copy(update={"corrections_offers": 0})
    fourth = assistant.ask("wombat newest release: how do I get it?")
    assert fourth.related_corrections == []
    with pytest.raises(ConflictError, match="offers no corrections"):
        assistant.confirm(fourth.id, c.id)


def test_confirmed_questions_apply_at_once_or_on_enable_and_offers_can_be_off(assistant):
    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    asked = assistant.ask("what is the procedure to bring wombat to its newest release")
    link = assistant.corrections.get(assistant.confirm(asked.id, c.id).correction["link"])
    assert link.pending and link.author == "asker"
    assistant.corrections.update(link.id, active=True, review=None)  # rag corrections enable
    assert assistant.ask(asked.question).correction["id"] == c.id

    assistant.config = assistant.config.model_copy(update={"corrections_confirmed": "apply"})
    second = assistant.ask("upgrading wombat to the latest version, how?")
    got = assistant.confirm(second.id, c.id, "zoe")
    assert got.correction["link_pending"] is False and not assistant.corrections.get(got.correction["link"]).pending
    assert assistant.ask(second.question).correction["id"] == c.id

    # two offers at most, nearest first, each correction once; 0 turns them off
    other = assistant.correct("Run wombat purge.", question="how do I remove wombat completely")
    third = assistant.correct("Run wombat prune.", question="how do I clean wombat caches")
    offers = assistant.ask("wombat: how to get the newest release installed").related_corrections
    assert len(offers) == 2 and offers[0]["similarity"] >= offers[1]["similarity"]
    assert len({o["id"] for o in offers}) == 2 and {o["id"] for o in offers} <= {c.id, other.id, third.id}
    assistant.config = assistant.config.model_copy(update={"corrections_offers": 3})
    assert len(assistant.ask("wombat: how to get the newest release installed").related_corrections) == 3
    assistant.config = assistant.config.model_copy(update={"corrections_offers": 0})
    assert assistant.ask("wombat: how to get the newest release installed").related_corrections == []


def judged_assistant(tmp_path, reply: str = "DIFFERENT", **config) -> Assistant:
    """An assistant on the fakes whose LLM judge of questions always replies `reply`."""
    index = FaissIndex(tmp_path / "idx")
    write_chunks(index, E, {"docs/upgrade.md": [Chunk("docs/upgrade.md", "To upgrade wombat run wombat self-update", 0, "Wombat", ("Wombat",))]})
    return Assistant(Config(index=str(tmp_path / "idx"), embedding_model="fake-hash", corrections_judge="llm", **config),
                     index=index, embedder=E, llm=ScriptedChat(reply))


def test_with_an_llm_judge_the_queue_holds_what_only_the_judge_turned_down(tmp_path):
    judged = judged_assistant(tmp_path)
    c = judged.correct("Run wombat self-update.", question="how do I upgrade wombat")
    judged.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.0, "weights": [0.0] * 6})
    asked = judged.ask("how do I upgrade wombat quickly")  # the classifier says yes, the judge no
    assert asked.correction is None
    assert [(s["answer_id"], s["correction_id"]) for s in judged.suggest_links()] == [(asked.id, c.id)]


def test_with_an_llm_judge_the_judge_decides_what_the_classifier_finds_plausible():
    m = Matcher(band=0.5, accept=0.99, p_min=0.9, weights=[0.0] * 6, judge_min=0.3)  # the classifier: p = 0.5
    a, b, embed = "How do I upgrade Wombat?", "What brings Wombat to its newest release?", E.embed_queries
    asked = []

    def judge(says):
        return lambda x, y: asked.append((x, y)) or says

    assert m.assess(a, b, 0.6, embed=embed)[0] is False  # alone, the classifier needs 0.9
    assert m.assess(a, b, 0.6, judge(True), embed) == (
        True, "in band, the LLM judge says the same question (classifier p=0.50)", 0.5)
    assert m.assess(a, b, 0.6, judge(False), embed)[:2] == (
        False, "in band, the LLM judge says the questions differ (classifier p=0.50)")
    assert m.assess(a, b, 0.45, judge(True), embed)[0] is True  # the judge's zone starts 0.1 below the band
    assert len(asked) == 3
    assert m.assess(a, b, 0.39, judge(True), embed)[0] is False  # below the floor it is not asked
    assert m.assess("How do I enable TLS?", "How do I disable TLS?", 0.9, judge(True), embed)[0] is False
    doubtful = Matcher(band=0.5, accept=0.99, p_min=0.9, weights=[-5.0, 0, 0, 0, 0, 0], judge_min=0.3)
    assert doubtful.assess(a, b, 0.6, judge(True), embed)[:2] == (
        False, "in band, classifier p=0.01 < 0.3: the LLM judge was not asked")
    assert len(asked) == 3
    assert m.assess("How do I upgrade Wombat?", "how do I upgrade wombat", 0.45, judge(False), embed)[0] is False
    assert len(asked) == 4  # the same words decide in the band only; below it, the judge
    elsewhere = Matcher(band=0.5, accept=0.99, p_min=0.9, weights=[0.0] * 6, related_weights=[-5.0] + [0.0] * 5)
    assert elsewhere.assess(a, b, 0.6, judge(True), embed)[1].startswith("in band, about something else")
    assert len(asked) == 4
    legacy = Matcher(band=0.5, accept=0.99, p_min=0.9, weights=[0.0] * 3)  # saved before: the judge only vetoes
    assert legacy.assess(a, b, 0.6, judge(True))[0] is False


def test_a_question_costs_at_most_corrections_judge_calls(tmp_path):
    judged = judged_assistant(tmp_path, corrections_judge_calls=2)
    for n in range(4):
        judged.correct(f"Answer {n}.", question=f"how do I upgrade wombat to version {n}")
    judged.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.0, "weights": [0.0] * 6})
    asked = []
    judged._judge = lambda a, b: asked.append(a) or False
    assert judged.find_correction("how do I upgrade wombat quickly") is None
    assert len(asked) == 2


def test_the_judges_zone_is_configurable(tmp_path):
    """`corrections_judge_floor` and `corrections_judge_min` widen what a trusted judge sees:
    a paraphrase far below the band, which the classifier doubts, is asked about and applies."""
    doubtful = {"band": 0.9, "accept": 1.0, "p_min": 0.9, "weights": [-5.0, 0, 0, 0, 0, 0],
                "related_weights": [5.0, 0, 0, 0, 0, 0], "related_min": 0.5, "feature_names": list(PREVIOUS_FEATURES)}
    question, paraphrase = "how do I upgrade wombat", "what brings wombat to its newest release"
    for config, applies in (({}, False), ({"corrections_judge_floor": 0.0}, False), ({"corrections_judge_min": 0.0}, False),
                            ({"corrections_judge_floor": 0.0, "corrections_judge_min": 0.0}, True)):
        judged = judged_assistant(tmp_path / "-".join(config or ["default"]), "SAME", **config)
        c = judged.correct("Run wombat self-update.", question=question)
        judged.corrections.set_meta("matcher", doubtful)
        assert judged.matcher.judge_floor == config.get("corrections_judge_floor")
        assert judged.matcher.judge_min == config.get("corrections_judge_min", 0.3)
        found = judged.find_correction(paraphrase)
        assert (found is not None and found[0].id == c.id) is applies, config
    assert "the LLM judge says the same question" in found[2]
    # without a judge the zone means nothing, and the matcher is the one stored
    plain = Config(index=str(tmp_path / "plain"), embedding_model="fake-hash", corrections_judge_floor=0.0)
    unjudged = Assistant(plain, index=FaissIndex(tmp_path / "plain"), embedder=E, llm=ScriptedChat("SAME"))
    assert unjudged.matcher.judge_floor is None
    # a floor above the band counts as the band: the zone only widens
    high = Matcher(band=0.5, accept=0.99, p_min=0.9, weights=[0.0] * 6, judge_floor=0.9)
    assert high.assess("How do I upgrade Wombat?", "What brings Wombat to its newest release?", 0.6,
                       lambda a, b: True, E.embed_queries)[0] is True
    with pytest.raises(ValueError):
        Config(corrections_judge_floor=1.5)


@pytest.mark.parametrize("reply, same", [("SAME", True), ("Same.", True), ("same question", True), ("Answer: SAME", True),
                                         ("DIFFERENT", False), ("Same or different?", False), ("", False),
                                         ("Different, not the same", False), ("Not the same", False)])
def test_the_judge_says_same_only_when_it_says_nothing_else(tmp_path, reply, same):
    judged = judged_assistant(tmp_path, reply)
    assert judged._judge("How do I upgrade Wombat?", "How do I update Wombat?") is same


def test_feedback_and_correction_need_a_known_answer(assistant):
    with pytest.raises(RagError, match="No logged answer"):
        assistant.feedback("nope", good=False)
    with pytest.raises(RagError, match="No logged answer"):
        assistant.correct("x", answer_id="nope")
    with pytest.raises(RagError, match="needs a question"):
        assistant.correct("x")
    with pytest.raises(RagError, match="needs the corrected answer"):
        assistant.correct(question="q")


@pytest.mark.integration
def test_calibrate_and_eval_on_pairs_with_the_real_model(workdir):
    """`rag corrections calibrate` fits and stores the matcher; `rag eval` on pairs reports it."""
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from rag.cli import cli
    from rag.corrections import load_pairs

    data = Path(__file__).resolve().parent.parent / "evals" / "datasets"
    runner = CliRunner()
    result = runner.invoke(cli, ["corrections", "calibrate", str(data / "corrections_calibration.jsonl"),
                                 "--index", "idx", "--out", "cal", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["false_override_rate"] <= 0.05 and summary["unrelated_override_rate"] <= 0.01
    assert summary["pairs"] == 618 and summary["unrelated_pairs"] == 300 and 0.2 < summary["recall"] <= 1
    assert len(summary["matcher"]["weights"]) == 1 + len(FEATURES) and summary["links"] == 0
    assert (workdir / "cal" / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    result = runner.invoke(cli, ["eval", str(data / "corrections_test.jsonl"), "--index", "idx", "--out", "ev", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["matcher"] == summary["matcher"]  # the calibration was stored with the index
    assert report["pairs"] == 140 and report["near_miss_override_rate"] <= 0.05 and report["paraphrase_recall"] > 0.2
    assert report["unrelated_override_rate"] <= 0.01
    # as a deployment meets it: the 45 anchors corrections in one store, every other question asked
    asked = report["as_asked"]
    assert (asked["corrections"], asked["questions_asked"]) == (45, 139)
    assert asked["paraphrase_recall"] > 0.2 and asked["near_miss_override_rate"] <= 0.05
    opposite = [r for r in json.loads((workdir / "ev" / "corrections_results.json").read_text())["rows"]
                if r["why"].startswith("opposite words")]  # "enable" / "disable", "upload" / "download", ...
    assert len(opposite) >= 3 and not any(r["match"] or r["matched"] for r in opposite)
    # the review queue shows a reviewer much of what the matcher missed, paraphrases among near misses
    assert report["missed_paraphrases_suggested"] > 0.6 and 0 < report["suggestion_precision"] < 1
    assert summary["matcher"]["review_min"] < summary["matcher"]["band"] - 0.1  # below the judge's zone
    assert summary["matcher"]["review_min"] == DEFAULT["review_min"]  # the default is this calibration's
    assert summary["matcher"]["offer_min"] == DEFAULT["offer_min"] < DEFAULT["review_min"]
    assert summary["matcher"]["offer_related_min"] == DEFAULT["offer_related_min"] < DEFAULT["related_min"]
    assert report["paraphrase_recall"] < report["reviewed_recall"] <= 1
    assert report["review_floor"] == summary["matcher"]["review_min"]
    # where it starts is the matcher's calibration, or --min-similarity: from 0.1 below the band it holds less
    result = runner.invoke(cli, ["eval", str(data / "corrections_test.jsonl"), "--index", "idx", "--out", "ev2", "--json",
                                 "--min-similarity", str(round(summary["matcher"]["band"] - 0.1, 2))])
    assert result.exit_code == 0, result.output
    higher = json.loads(result.stdout)
    assert higher["paraphrase_recall"] == report["paraphrase_recall"] and higher["suggestions"] < report["suggestions"]
    assert report["paraphrase_recall"] < higher["reviewed_recall"] < report["reviewed_recall"]
    # a set in another shape (each anchor with its rewordings) is read as the same pairs
    grouped = {}
    for p in load_pairs(data / "corrections_test.jsonl"):
        grouped.setdefault(p["a"], {"question": p["a"], "paraphrases": [], "near_misses": []})[
            "paraphrases" if p["match"] else "near_misses"].append(p["b"])
    Path("grouped.jsonl").write_text("".join(json.dumps(g) + "\n" for g in grouped.values()))
    result = runner.invoke(cli, ["eval", "grouped.jsonl", "--index", "idx", "--out", "ev3", "--json"])
    assert result.exit_code == 0, result.output
    same = json.loads(result.stdout)
    assert (same["pairs"], same["paraphrase_recall"]) == (140, report["paraphrase_recall"])
    # the questions reviewers linked are labelled pairs: calibrate learns from them too
    made = json.loads(runner.invoke(cli, ["correct", "--question", "How do I rotate the Wombat API keys?", "--answer",
                                          "Run wombat keys rotate.", "--index", "idx", "--json"]).stdout)
    for question, link in (("Can I renew Wombat's access keys?", "--same-as"), ("How do I revoke a Wombat API key?",
                                                                               "--not-same-as")):
        assert runner.invoke(cli, ["correct", "--question", question, link, made["id"], "--index", "idx"]).exit_code == 0
    result = runner.invoke(cli, ["corrections", "calibrate", str(data / "corrections_calibration.jsonl"), "--with-links",
                                 "--dry-run", "--index", "idx", "--out", "cal2", "--json"])
    assert result.exit_code == 0, result.output
    linked = json.loads(result.stdout)
    assert (linked["links"], linked["pairs"]) == (2, 620)


def test_answer_logs_from_before_conversations_are_migrated(tmp_path):
    import sqlite3

    from indexes.corrections import AnswerRecord, SqliteCorrectionStore

    conn = sqlite3.connect(tmp_path / "corrections.sqlite")
    conn.execute("""CREATE TABLE answers (id TEXT PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL,
                    sources TEXT NOT NULL, model TEXT, prompt TEXT, correction_id TEXT, error TEXT, created_at TEXT NOT NULL)""")
    conn.execute("INSERT INTO answers VALUES ('old', 'q', 'a', '[]', 'm', 'p', NULL, NULL, '2026-01-01')")
    conn.commit()
    conn.close()
    store = SqliteCorrectionStore(tmp_path)
    assert store.get_answer("old").question == "q" and store.get_answer("old").conversation_id is None
    store.log_answer(AnswerRecord("new", "q2", "a2", [], "m", "p", conversation_id="c", turn=0))
    assert [r.id for r in store.conversation("c")] == ["new"]


def test_corrections_from_before_linked_questions_are_migrated(tmp_path, monkeypatch):
    import sqlite3

    import numpy as np

    from indexes.corrections import Correction, SqliteCorrectionStore

    conn = sqlite3.connect(tmp_path / "corrections.sqlite")
    conn.execute("""CREATE TABLE corrections (id TEXT PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL,
                    author TEXT, reason TEXT, replaces_answer_id TEXT, bad_answer TEXT, sources TEXT NOT NULL,
                    created_at TEXT NOT NULL, active INTEGER NOT NULL, review TEXT, model TEXT NOT NULL,
                    embedding BLOB NOT NULL)""")
    conn.execute("INSERT INTO corrections VALUES ('old', 'q', 'a', 'ana', NULL, NULL, NULL, '[]', '2026-01-01', 1, NULL, "
                 "'m', ?)", (np.ones(4, np.float32).tobytes(),))
    conn.commit()
    conn.close()
    with monkeypatch.context() as m:  # a read-only index directory: read as it is, never migrated
        m.setattr("indexes.corrections.os.access", lambda *args: False)
        read_only = SqliteCorrectionStore(tmp_path)
        assert [c.id for c in read_only.list()] == ["old"] and read_only.get("old").same_as is None
        assert [c.id for c, _ in read_only.nearest(np.ones(4, np.float32))] == ["old"]
        read_only.close()
    store = SqliteCorrectionStore(tmp_path)
    assert store.get("old").answer == "a" and store.get("old").linked_to is None
    store.add(Correction("q2", "", same_as="old", model="m"), np.ones(4, np.float32))
    assert [c.same_as for c in store.list()] == [None, "old"]


def test_a_correction_disabled_by_another_process_stops_matching_at_once(tmp_path):
    """Two stores on one file (two replicas, or a replica and `rag correct`): a change made
    through one is seen by the other on its next lookup."""
    from indexes.corrections import AnswerRecord, Correction, SqliteCorrectionStore
    from pipelines.embed import HashEmbedder

    e = HashEmbedder()
    a, b = SqliteCorrectionStore(tmp_path), SqliteCorrectionStore(tmp_path)
    c = Correction("how do i upgrade wombat", "Use wombat upgrade.", model="fake-hash")
    a.add(c, e.embed_query(c.question))
    assert [x.id for x, _ in b.nearest(e.embed_query(c.question))] == [c.id]
    assert np.array_equal(b.embedding(c.id), e.embed_query(c.question)) and b.embedding("nope") is None
    a.update(c.id, active=False)
    assert b.nearest(e.embed_query(c.question)) == []
    a.update(c.id, active=True)
    b.log_answer(AnswerRecord("x", "q", "a", [], "m", "p"))  # its own writes elsewhere do not blind it
    assert [x.id for x, _ in b.nearest(e.embed_query(c.question))] == [c.id]


def test_the_same_words_in_the_same_order_are_the_same_question():
    from rag.corrections import same_words

    assert same_words("How do I upgrade Wombat?", "how do i upgrade wombat")
    assert same_words("How can I upgrade Wombat?", "how do I upgrade wombat")  # the auxiliary only frames it
    assert same_words("What's the command to sync everything?", "What is the command to sync everything?")
    assert same_words("Where're the logs?", "where are the logs") and not same_words("the actor's log", "the actor log")
    assert same_words("Does it support gRPC, and how would I define a service?", "does it support grpc and how do i define a service")
    assert not same_words("Should I upgrade Wombat?", "Can I upgrade Wombat?")  # advice is another question
    assert not same_words("When does the autoscaler run?", "Why does the autoscaler run?")
    assert not same_words("How do I serve multiple models behind one endpoint?",
                          "How do I serve one model behind multiple endpoints?")
    assert not same_words("How do I make a stateful actor?", "How do I make a stateless actor?")
    assert not same_words("How do I transform a dataset?", "How do I transfer a dataset?")
    # stopwords that carry direction or logic still count
    assert not same_words("How do I copy files from S3?", "How do I copy files to S3?")
    assert not same_words("Can I run it on Kubernetes and on VMs?", "Can I run it on Kubernetes or on VMs?")
    assert same_words("How do I copy files to S3?", "how do I copy the files to S3")
    assert same_words("How many trials run?", "how many trial runs")  # inflections only
    assert not same_words("Как установить?", "Как удалить?") and not same_words("What is this?", "What is that?")
    # a contracted negation is a "not", not the words "doesn" and "t"
    assert same_words("My task doesn't start, why?", "my task does not start. Why?")
    assert same_words("I can't connect to the cluster", "I can not connect to the cluster")
    assert not same_words("Why doesn't my task start?", "Why does my task start?")
    # British and American spellings are the same words
    assert same_words("What licence does Wombat use?", "What license does Wombat use?")
    assert same_words("How do I serialise the colour of a modelling run?", "how do i serialize the color of a modeling run")
    assert not same_words("How do I fill a column?", "How do I file a column?")


def test_calibration_says_when_no_matcher_fits_and_never_crosses_linked_questions():
    import numpy as np

    from rag.corrections import unrelated_pairs

    chain = [{"a": "x", "b": "y", "match": True}, {"a": "y", "b": "z", "match": True}, {"a": "z", "b": "w", "match": True}]
    assert unrelated_pairs(chain, 10) == []  # x-y-z-w are one question asked four ways
    pairs = [{"a": f"q{i}", "b": f"p{i}", "match": i % 2 == 0} for i in range(6)]
    with pytest.raises(ValueError, match="no matcher"):  # a near miss is the most similar pair of all
        calibrate(pairs, lambda a, b: np.array([1.0 if (x, y) == ("q1", "p1") else 0.5 for x, y in zip(a, b)]),
                  max_false_rate=0.0, max_unrelated_rate=0.0, embed=None, unrelated=0)


def test_two_reviewers_correcting_one_question_at_once_leave_one_correction(assistant, monkeypatch):
    """The writes interleave: A stamps, B stamps, writes and cleans up, then A writes. B's
    correction is stamped later and stands; A is told so; no question is left with two answers."""
    from indexes.errors import ConflictError

    first = assistant.correct("Run apt upgrade.", question="How do I upgrade Wombat?")
    store = assistant.corrections
    real_add = type(store).add
    theirs = []

    def add_after_the_other(self, correction, embedding):
        if not theirs and correction.answer == "A's answer.":  # B comes in between A's stamp and A's write
            theirs.append(assistant.correct("B's answer.", question="how do I upgrade wombat"))
        return real_add(self, correction, embedding)

    monkeypatch.setattr(type(store), "add", add_after_the_other)
    with pytest.raises(ConflictError, match=f"corrected this question at the same moment; their correction "
                                            f"{theirs[0].id if theirs else '.*'} stands"):
        assistant.correct("A's answer.", question="How do I upgrade Wombat?")
    active = [c.id for c in store.list(include_inactive=False) if not c.linked_to]
    assert active == [theirs[0].id] and first.id not in active


def test_as_asked_stores_each_anchor_once_and_says_what_it_did_not_ask(assistant):
    """`rag eval`'s as_asked: anchors that differ only in case are one correction; a question
    that is itself an anchor is not asked but counted; a kind of pair never asked has no rate."""
    from rag.evaluate import evaluate_as_asked

    pairs = [{"a": "How do I upgrade wombat?", "b": "how do I upgrade Wombat", "match": True},
             {"a": "how do i upgrade wombat", "b": "How do I upgrade wombat", "match": True},
             {"a": "How do I upgrade wombat?", "b": "How do I list the wombat releases?", "match": True}]
    result = evaluate_as_asked(assistant, pairs)
    assert (result["corrections"], result["pairs_asked"], result["pairs_skipped"]) == (1, 1, 2)
    assert result["near_miss_override_rate"] is None and result["paraphrases_given_another_correction"] == 0.0
    assert [r["answered_by"] for r in result["rows"]] == [None]  # another question, not in the same words
    assert assistant.corrections.list() == []  # the scratch store, not the index's


def _unit(*parts):
    import numpy as np

    v = np.zeros(E.embed_query("x").shape[0], dtype=np.float32)
    for i, x in enumerate(parts):
        v[i] = x
    return v / np.linalg.norm(v)


def _two_corrections(assistant, own_question, rival_question, rival_similarity, rival_answer, margin=0.05):
    """Two corrections at chosen similarities to the question asked (own at 0.90), and a
    classifier that takes every pair."""
    import math

    assistant.config = assistant.config.model_copy(update={"corrections_margin": margin})
    assistant.corrections.set_meta("matcher", {"band": 0.5, "accept": 1.0, "p_min": 0.5, "weights": [5.0] + [0.0] * len(FEATURES),
                                               "feature_names": list(FEATURES)})
    own = Correction(own_question, "Run wombat self-update.", model="fake-hash")
    rival = Correction(rival_question, rival_answer, model="fake-hash")
    assistant.corrections.add(own, _unit(0.9, math.sqrt(1 - 0.81)))
    assistant.corrections.add(rival, _unit(rival_similarity, 0, math.sqrt(1 - rival_similarity ** 2)))
    return own, rival


@pytest.mark.parametrize("rival_similarity, rival_answer, margin, applies", [
    (0.88, "Run wombat rollback.", 0.05, "none"),  # two answers about as near: a reviewer's call
    (0.80, "Run wombat rollback.", 0.05, "own"),  # the nearest by more than the margin
    (0.88, "Run wombat self-update.", 0.05, "own"),  # the same answer either way
    (0.88, "run  wombat self-update", 0.05, "own"),  # ... case, spacing and end punctuation aside
    (0.88, "Run wombat rollback.", 0.0, "own"),  # the margin off
    (0.93, "Run wombat rollback.", 0.0, "rival"),  # off: the first the classifier takes, as before
    (0.93, "Run wombat rollback.", 0.05, "none"),  # on: a nearer one with another answer blocks too
])
def test_a_correction_nearly_as_near_as_another_with_another_answer_leaves_it_to_a_reviewer(
        assistant, rival_similarity, rival_answer, margin, applies):
    """Where the classifier decides, the nearest correction applies only if no correction with
    another answer is within `corrections_margin` of it: which one is meant is a human's call."""
    question = "Can I update wombat to the newest release?"
    own, rival = _two_corrections(assistant, "How do I upgrade wombat?", "How do I roll back a wombat upgrade?",
                                  rival_similarity, rival_answer, margin)
    found = assistant.find_correction(question, _unit(1.0))
    assert (found[0].id if found else None) == {"none": None, "own": own.id, "rival": rival.id}[applies]
    if applies == "none":
        why = [v[4] for v in assistant._weigh(question, _unit(1.0), None) if v[1] == own.id][0]
        assert "a reviewer's call" in why and rival.id in why


def test_a_rival_ruled_out_by_rule_or_by_a_reviewer_does_not_block(assistant):
    """A correction that the opposite-words rule, or a reviewer's not_same_as link of this very
    question, rules out is no rival; and the margin never blocks a not_same_as link."""
    question = "How do I enable wombat backups?"
    own, rival = _two_corrections(assistant, "How can I turn on wombat backups?", "How do I disable wombat backups?",
                                  0.88, "Run wombat backups off.")
    assert assistant.find_correction(question, _unit(1.0))[0].id == own.id  # "enable" / "disable": never the same
    assistant.corrections.remove(own.id), assistant.corrections.remove(rival.id)
    question = "Can I update wombat to the newest release?"
    own, rival = _two_corrections(assistant, "How do I upgrade wombat?", "How do I roll back a wombat upgrade?",
                                  0.885, "Run wombat rollback.")
    assert assistant.find_correction(question, _unit(1.0)) is None
    link = Correction(question, "", model="fake-hash", not_same_as=rival.id)
    assistant.corrections.add(link, _unit(0.999, 0.01))
    assert assistant.find_correction(question, _unit(1.0))[0].id == own.id  # the reviewer said: not the rival's


def test_reading_an_empty_location_writes_nothing_and_a_typo_is_an_error(tmp_path):
    """Reading corrections where none were ever written creates no file; a write then creates
    the store, and a store reading it sees it. The CLI's reading commands call a location with
    nothing there an error instead of an empty store."""
    from click.testing import CliRunner

    from rag.cli import cli

    reader, writer = SqliteCorrectionStore(tmp_path / "idx"), SqliteCorrectionStore(tmp_path / "idx")
    assert reader.list() == [] and reader.nearest(E.embed_query("q")) == [] and reader.get_meta("matcher") is None
    assert not (tmp_path / "idx").exists()
    c = Correction("how do i upgrade wombat", "Use wombat upgrade.", model="fake-hash")
    writer.add(c, E.embed_query(c.question))
    assert [x.id for x, _ in reader.nearest(E.embed_query(c.question))] == [c.id]
    assert [x.id for x in reader.list()] == [c.id]
    for command in (["corrections", "list"], ["corrections", "show", "abc"], ["feedback", "list"], ["corrections", "suggest"]):
        result = CliRunner().invoke(cli, [*command, "--index", str(tmp_path / "typo")])
        assert result.exit_code == 1 and "Nothing at" in result.output, result.output
    assert not (tmp_path / "typo").exists()
    import click

    from rag.cli.common import _assistant

    ctx = click.Context(cli, obj={})  # a database is never "nothing there": it says so itself
    assert _assistant(ctx, existing=True, index="postgresql://u@localhost:1/db").config.index.startswith("postgresql://")


def test_an_imported_asker_link_is_reviewed_by_its_question(assistant, tmp_path, monkeypatch):
    """An asker's link imported into another index names an answer logged elsewhere: the queue
    offers it by its question, and a reviewer's yes works there."""
    from click.testing import CliRunner

    from rag.cli import cli

    c = assistant.correct("Run wombat self-update.", question="how do I upgrade wombat", author="ana")
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    asked = assistant.ask("what is the procedure to bring wombat to its newest release")
    assistant.confirm(asked.id, c.id, "zoe")
    elsewhere = FaissIndex(tmp_path / "other")
    write_chunks(elsewhere, E, {"docs/upgrade.md": [Chunk("docs/upgrade.md", "To upgrade wombat run it", 0)]})
    other = Assistant(Config(index=str(tmp_path / "other"), embedding_model="fake-hash"), index=elsewhere, embedder=E,
                      llm=ScriptedChat("x"))
    exported = tmp_path / "c.jsonl"
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-hash")
    assert CliRunner().invoke(cli, ["corrections", "export", str(exported), "--index", str(assistant.config.index)]).exit_code == 0
    assert CliRunner().invoke(cli, ["corrections", "import", str(exported), "--index", str(tmp_path / "other")]).exit_code == 0
    other.corrections.set_meta("matcher", assistant.corrections.get_meta("matcher"))
    [s] = other.suggest_links()
    assert s["confirmed_by_asker"] and s["answer_id"] is None and s["question"] == asked.question
    shown = CliRunner().invoke(cli, ["corrections", "suggest", "--index", str(tmp_path / "other")])
    assert f"rag correct --question '{asked.question}' --same-as {c.id}" in shown.output, shown.output
    result = CliRunner().invoke(cli, ["corrections", "review", "--index", str(tmp_path / "other")], input="y\n")
    assert result.exit_code == 0 and "Linked 1 same as" in result.output, result.output
    again = CliRunner().invoke(cli, ["corrections", "import", str(exported), "--index", str(tmp_path / "other")])
    assert again.exit_code == 0 and "already there or settled" in again.output  # the reviewer's yes settled it
    assert not [x for x in other.corrections.list(include_inactive=True) if x.unreviewed]
