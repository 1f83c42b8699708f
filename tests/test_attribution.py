"""Citations by attribution, for answers whose model cited nothing."""

from hypothesis import given, strategies as st

from rag.attribution import attribute, split_sentences

BLOCKS = {
    1: "To upgrade wombat run wombat self-update; the updater keeps your configuration files.",
    2: "The glacier backend retries failed uploads five times with exponential backoff.",
}


def test_each_supported_sentence_gets_the_block_holding_its_words():
    text = "The glacier backend retries failed uploads five times. Run wombat self-update to upgrade wombat!"
    got = attribute(text, BLOCKS)
    assert got.text == ("The glacier backend retries failed uploads five times [2]. "
                        "Run wombat self-update to upgrade wombat [1]!")
    assert got.support == {2: 1.0, 1: 1.0}


def test_unsupported_short_and_code_sentences_are_left_alone():
    text = "Bananas are yellow and grow in tropical countries. Yes.\n```\nwombat self-update upgrade configuration files\n```"
    got = attribute(text, BLOCKS)
    assert got.text == text and got.support == {}


def test_ties_go_to_the_higher_ranked_block():
    blocks = {1: "alpha beta gamma delta", 2: "alpha beta gamma delta"}
    assert attribute("alpha beta gamma delta.", blocks).text == "alpha beta gamma delta [1]."


def test_no_blocks_no_citations():
    assert attribute("The glacier backend retries uploads.", {}).text == "The glacier backend retries uploads."


@given(st.text())
def test_sentences_rebuild_the_text_exactly(text):
    assert "".join(split_sentences(text)) == text


@given(st.text(alphabet=st.sampled_from(list("abc .!?\n[]1`\"")), max_size=80))
def test_attribution_only_adds_citations_of_given_blocks(text):
    got = attribute(text, {1: "aaa bbb ccc abc", 3: "cab bac acb"}, min_words=1)

    def uncited(t: str) -> str:  # the text may hold " [1]" itself (Hypothesis found " [1]")
        return t.replace(" [1]", "").replace(" [3]", "")

    assert uncited(got.text) == uncited(text)
    assert set(got.support) <= {1, 3}
