import pytest

from evals.judges import faithfulness, pairwise, parse_choice, parse_score, parse_yes_no, quality


@pytest.mark.parametrize("reply, score", [
    ("Score: 4\nReason: mostly right", 4), ("score - 2. The answer misses", 2), ("I'd give it 5/5.", 5),
    ("3", 3), ("3 out of 5, because", 3), ("It is good.", None), ("Score: 9", None),
])
def test_parse_score(reply, score):
    assert parse_score(reply) == score


@pytest.mark.parametrize("reply, choice", [
    ("A", "A"), ("b.", "B"), ("Answer B", "B"), ("After reading both, I think B is better because it cites.", "B"),
    ("Both A and B are fine.", None), ("Neither.", None),
])
def test_parse_choice_is_robust_to_paragraphs(reply, choice):
    assert parse_choice(reply) == choice


@pytest.mark.parametrize("reply, verdict", [("Supported: YES\nReason: x", True), ("no, it invents a flag", False), ("maybe", None)])
def test_parse_yes_no(reply, verdict):
    assert parse_yes_no(reply) == verdict


def test_judges_render_their_own_prompts_and_parse_replies():
    seen = []

    def scripted(reply):
        def generate(messages):
            seen.append(messages)
            return reply
        return generate

    v = quality(scripted("Score: 2\nReason: it names the wrong command."), "q?", "use X", "use Y")
    assert (v.value, v.reason) == (2, "it names the wrong command.")
    assert "Reference answer: use X" in seen[-1][-1]["content"] and "Answer to grade: use Y" in seen[-1][-1]["content"]
    assert pairwise(scripted("I prefer A."), "q?", "[1] ctx", "a1", "b1").value is None
    assert pairwise(scripted("A"), "q?", "[1] ctx", "a1", "b1").value == "A"
    assert faithfulness(scripted("Supported: NO\nReason: invented"), "[1] ctx", "ans").value == 0.0
