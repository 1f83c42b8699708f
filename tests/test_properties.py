"""Property-based tests: parsers never crash on any text, and chunking never loses text."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexes.errors import ParseError
from pipelines.chunk import ChunkingConfig, chunk_document
from pipelines.parse import Document, Section, parse

LINES = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.sampled_from(["# Title", "## Sub", "```", "~~~", "=====", "-----", ".. _label:", "(lbl)=",
                         "<h2 id='x'>H</h2>", "<p>para</p>", "---", "    code", ""]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=LINES, suffix=st.sampled_from([".md", ".rst", ".txt", ".html", ".ipynb"]))
def test_parsers_never_crash(lines, suffix):
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    try:
        document = parse("f" + suffix, data)
    except ParseError:
        return  # a reported failure is fine; any other exception is a bug
    assert document.sections and all(s.text.strip() for s in document.sections)


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.text(alphabet=st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=30),
                   min_size=1, max_size=300),
    seps=st.lists(st.sampled_from([" ", "\n", "\n\n", "  "]), min_size=1, max_size=300),
    size=st.integers(16, 120),
    overlap=st.integers(0, 30),
)
def test_chunks_cover_the_text_and_respect_the_budget(words, seps, size, overlap):
    text = "".join(w + seps[i % len(seps)] for i, w in enumerate(words)).strip()
    doc = Document("T", [Section(("T", "S"), "s", text)])

    def count(t):
        return len(t.split())

    chunks = chunk_document("f.md", doc, count, max_tokens=size, config=ChunkingConfig(size, overlap))
    # no text lost: the text's characters (whitespace aside) appear in order in the chunks;
    # overlap repeats some, and a word longer than the budget in characters may be cut
    joined = iter("".join("".join(c.text.split()) for c in chunks))
    assert all(ch in joined for ch in "".join(text.split()))
    budget = max(8, max(16, size) - count("T > S") - 1)  # what is left after the heading line
    assert set(" ".join(c.text for c in chunks).split()) >= {w for w in text.split() if len(w) <= budget}
    assert all(count(c.text) + count("T > S") + 1 <= max(16, size) for c in chunks)
