import pytest

from indexes.errors import ParseError
from pipelines.parse import decode, parse, slugify


def sections(path, text):
    return [(s.titles, s.anchor, s.text) for s in parse(path, text.encode()).sections]


def test_markdown_sections_titles_and_anchors():
    got = sections("a.md", "---\ntitle: x\n---\n# Top\nintro\n\n(my-label)=\n## Sub part\nbody\n\n### Deeper {#custom}\nmore\n")
    assert got == [
        (("Top",), "top", "intro"),
        (("Top", "Sub part"), "my-label", "body"),
        (("Top", "Sub part", "Deeper"), "custom", "more"),
    ]


def test_markdown_code_fence_is_not_a_heading():
    got = sections("a.md", "# T\n```bash\n# comment\nls\n```\n")
    assert len(got) == 1 and "# comment" in got[0][2]


def test_raw_html_in_markdown_keeps_its_words_not_its_tags():
    text = ("# T\nSome <b>bold</b> and `List<int>` in code; a < b.\n<!-- a note\nover lines -->\n"
            '<table><tr><td style="text-align: right;">42</td><td>rows</td></tr></table>\n'
            "<script>alert('x')</script>\n<style>\n.x { color: red }\n</style>\n"
            "```html\n<div>kept in a fence</div>\n<!-- kept -->\n```\n")
    [(_, _, body)] = sections("a.md", text)
    assert "Some bold and `List<int>` in code; a < b." in body and "42 rows" in body
    for gone in ("<b>", "<td", "a note", "alert", "color: red", "<table"):
        assert gone not in body
    assert "<div>kept in a fence</div>\n<!-- kept -->" in body
    [(_, _, body)] = sections("b.md", "# T\n<p>Fish &amp; chips &lt;X&gt;</p> and `a &amp; b`\n  - nested &amp; kept\n")
    assert body == "Fish & chips <X> and `a &amp; b`\n  - nested & kept"
    page = sections("saved.md", "<!DOCTYPE html>\n<html><head><title>Saved page</title></head>\n<body><p>Hello</p></body></html>\n")
    assert "<" not in " ".join(s[2] for s in page) and "Hello" in page[-1][2]


def test_markdown_setext_headings():
    got = sections("a.md", "Title\n=====\ntext\n\nPart\n----\nmore\n")
    assert [g[0] for g in got] == [("Title",), ("Title", "Part")]


def test_rst_titles_levels_and_labels():
    text = ".. _top:\n\n=====\nTitle\n=====\n\nintro\n\n.. _sub-label:\n\nSub\n---\n\ntext\n\nOther\n-----\nx\n"
    got = sections("a.rst", text)
    assert got == [
        (("Title",), "top", "intro"),
        (("Title", "Sub"), "sub-label", "text"),
        (("Title", "Other"), "other", "x"),
    ]


def test_html_sections_ids_and_stripped_scripts():
    html = (
        "<html><head><title>T</title><script>bad()</script></head><body><nav>menu</nav>"
        "<h1 id='a'>Hello</h1><p>para</p><section id='s'><h2>Two</h2><p>more</p></section>"
        "<script>evil()</script></body></html>"
    )
    got = sections("a.html", html)
    assert got == [(("Hello",), "a", "para"), (("Hello", "Two"), "s", "more")]


def test_plain_text_is_one_section_named_after_the_file():
    assert sections("notes.txt", "hello\nworld\n") == [(("notes",), None, "hello\nworld")]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty file"),
        (b"  \n\n", "empty file"),
        (b"abc\x00\x01def", "binary"),
        (b"caf\xe9 au lait", "not UTF-8"),
        ("# Caf\u00e9\nau lait\n".encode("utf-16"), "UTF-16 text, not UTF-8; convert"),  # with a byte-order mark
        ("# Cafe\nau lait\n".encode("utf-16-le"), "UTF-16 text"),  # without one
        ("# \u00c9t\u00e9 \u00e0 l'\u00eele\n".encode("utf-16-le"), "UTF-16 text"),  # accents too
        ("# Cafe\nau lait\n".encode("utf-16-be"), "UTF-16 text"),
        ("# Cafe\n".encode("utf-32"), "UTF-32 text"),
    ],
)
def test_bad_bytes_are_refused_with_a_reason(data, reason):
    with pytest.raises(ParseError, match=reason):
        decode(data)


def test_utf8_bom_is_accepted():
    assert decode("\ufeffhi".encode("utf-8")) == "hi"


def test_unsupported_extension():
    with pytest.raises(ParseError, match="unsupported"):
        parse("a.xyz", b"data")


@pytest.mark.parametrize(
    "title, slug",
    [("Monitoring and Logging Metrics", "monitoring-and-logging-metrics"),
     ("Using `map_batches` (fast!)", "using-map-batches-fast"),
     ("Ünïcode Title", "unicode-title")],
)
def test_slugify(title, slug):
    assert slugify(title) == slug
