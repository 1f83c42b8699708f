"""The corrections store battery, run on both backends."""


from indexes.corrections import AnswerRecord, Correction, Feedback
from pipelines.embed import HashEmbedder

E = HashEmbedder()


class CorrectionStoreContract:
    """Subclasses provide a `store` fixture."""

    def test_add_get_list_update_remove(self, store):
        c = Correction("How do I upgrade?", "Run wombat self-update.", author="ana", sources=["docs/a.md"], model="fake-hash")
        store.add(c, E.embed_query(c.question))
        got = store.get(c.id)
        assert got.to_dict() == c.to_dict()
        assert [x.id for x in store.list()] == [c.id]
        assert store.update(c.id, active=False) and store.list(include_inactive=False) == []
        assert store.nearest(E.embed_query("How do I upgrade?")) == []  # disabled ones never match
        store.update(c.id, active=True)
        assert store.remove(c.id) and store.get(c.id) is None and not store.remove(c.id)

    def test_add_if_absent_adds_once(self, store):
        """What two imports of one file at once rely on: the second insert of an id is a no-op."""
        c = Correction("How do I upgrade?", "Run wombat self-update.", model="m")
        twin = Correction("How do I upgrade?", "Another answer.", id=c.id, model="m")
        assert store.add_if_absent(c, E.embed_query(c.question)) is True
        assert store.add_if_absent(twin, E.embed_query(c.question)) is False
        assert [x.answer for x in store.list()] == ["Run wombat self-update."]

    def test_a_link_can_be_re_pointed(self, store):
        old, new = (Correction("How do I upgrade?", a, model="m") for a in ("Old.", "New."))
        link = Correction("What's the way to update it?", "", same_as=old.id, model="m")
        for x in (old, new, link):
            store.add(x, E.embed_query(x.question))
        assert store.update(link.id, same_as=new.id) and store.get(link.id).same_as == new.id

    def test_linked_questions_round_trip(self, store):
        c = Correction("How do I upgrade?", "Run wombat self-update.", model="m")
        same = Correction("What's the way to update it?", "", same_as=c.id, model="m")
        other = Correction("How do I uninstall?", "", not_same_as=c.id, model="m")
        for x in (c, same, other):
            store.add(x, E.embed_query(x.question))
        assert [store.get(x.id).to_dict() for x in (c, same, other)] == [x.to_dict() for x in (c, same, other)]
        assert [store.get(x.id).linked_to for x in (c, same, other)] == [None, c.id, c.id]
        assert store.remove(same.id) and {x.id for x in store.list()} == {c.id, other.id}  # one second: any order
        assert store.remove(c.id) and store.list() == []  # its linked questions go with it

    def test_nearest_orders_by_similarity(self, store):
        for q in ("upgrade wombat now", "delete all photos", "upgrade wombat carefully"):
            store.add(Correction(q, "x", model="fake-hash"), E.embed_query(q))
        found = store.nearest(E.embed_query("upgrade wombat now"), 2)
        assert [c.question for c, _ in found][0] == "upgrade wombat now"
        assert found[0][1] == __import__("pytest").approx(1.0, abs=1e-5) and found[0][1] >= found[1][1]

    def test_flag_for_review_marks_corrections_citing_changed_files(self, store):
        a = Correction("q1", "a1", sources=["docs/a.md", "https://x/a.html#s"], model="m")
        b = Correction("q2", "a2", sources=["docs/b.md"], model="m")
        for c in (a, b):
            store.add(c, E.embed_query(c.question))
        assert store.flag_for_review(["docs/a.md"], "changed") == [a.id]
        assert "docs/a.md" in store.get(a.id).review and store.get(b.id).review is None

    def test_answer_log_and_feedback(self, store):
        store.log_answer(AnswerRecord("ans1", "q?", "wrong", [{"path": "docs/a.md", "cited": True}], "m", "answer@v1"))
        assert store.get_answer("ans1").sources == [{"path": "docs/a.md", "cited": True}]
        assert store.get_answer("nope") is None
        store.add_feedback(Feedback("ans1", False, "outdated"))
        store.add_feedback(Feedback("ans1", True))
        bad = store.list_feedback(bad_only=True)
        assert [(f.answer_id, f.good, f.comment, f.question, f.answer) for f in bad] == [("ans1", False, "outdated", "q?", "wrong")]
        assert len(store.list_feedback()) == 2 and bad[0].correction_id is None
        store.log_answer(AnswerRecord("ans2", "q2?", "Use x.", [], "m", "answer@v1", correction_id="c1"))
        store.add_feedback(Feedback("ans2", False))
        assert store.list_feedback(bad_only=True)[-1].correction_id == "c1"  # a reviewer sees which correction answered

    def test_recent_answers_are_the_models_newest_first(self, store):
        for i, (correction, error) in enumerate([(None, None), ("c1", None), (None, "LLMError: down"), (None, None)]):
            store.log_answer(AnswerRecord(f"a{i}", f"q{i}", "x", [], "m", "answer@v1", correction_id=correction, error=error,
                                          created_at=f"2026-01-0{i + 1}T00:00:00+00:00"))
        assert [r.id for r in store.recent_answers()] == ["a3", "a0"]  # no correction's, no failure
        assert [r.id for r in store.recent_answers(1)] == ["a3"]
        for i in range(5):  # in the same second: still newest first
            store.log_answer(AnswerRecord(f"s{i}", "q", "x", [], "m", "answer@v1"))
        assert [r.id for r in store.recent_answers(3)] == ["s4", "s3", "s2"]

    def test_meta_round_trip(self, store):
        assert store.get_meta("matcher") is None
        store.set_meta("matcher", {"band": 0.8, "weights": [1.0, 2.0]})
        assert store.get_meta("matcher") == {"band": 0.8, "weights": [1.0, 2.0]}

    def test_conversation_returns_the_last_turns_oldest_first(self, store):
        for turn in range(5):
            store.log_answer(AnswerRecord(f"c{turn}", f"q{turn}", f"a{turn}", [], "m", "answer@v1",
                                          conversation_id="conv", turn=turn))
        store.log_answer(AnswerRecord("other", "q", "a", [], "m", "answer@v1", conversation_id="conv2"))
        store.log_answer(AnswerRecord("alone", "q", "a", [], "m", "answer@v1"))
        assert [r.question for r in store.conversation("conv", 3)] == ["q2", "q3", "q4"]
        assert store.conversation("conv", 3)[-1].turn == 4 and store.conversation("nope") == []
        assert store.get_answer("c4").conversation_id == "conv" and store.get_answer("alone").conversation_id is None
