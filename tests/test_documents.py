import pytest

from indexes.errors import ParseError
from pipelines.chunk import chunk_document
from pipelines.parse import parse
from tests.docgen import encrypt_pdf, make_docx, make_notebook, make_pdf, make_pptx, make_zip_bomb


def sections(path, data):
    return [(s.titles, s.anchor, s.text, s.page) for s in parse(path, data).sections]


def test_pdf_text_with_page_numbers_and_title():
    doc = parse("manual.pdf", make_pdf(["First page text.", "", "Third page text."], title="Wombat Manual"))
    assert doc.title == "Wombat Manual"
    assert [(s.page, s.anchor, s.text) for s in doc.sections] == [
        (1, "page=1", "First page text."), (3, "page=3", "Third page text.")]
    chunks = chunk_document("manual.pdf", doc, lambda t: len(t.split()), 100)
    assert [c.metadata["page"] for c in chunks] == [1, 3]


def test_encrypted_pdf_is_refused_with_a_reason():
    with pytest.raises(ParseError, match="encrypted PDF"):
        parse("secret.pdf", encrypt_pdf(make_pdf(["hidden"])))


@pytest.mark.parametrize("data", [make_pdf(["x"])[:120], b"%PDF-1.4\n garbage garbage", b"not a pdf at all"])
def test_corrupt_pdf_is_refused_with_a_reason(data):
    with pytest.raises(ParseError, match="PDF"):
        parse("broken.pdf", data)


def test_pdf_without_text_suggests_ocr():
    with pytest.raises(ParseError, match="OCR"):
        parse("scan.pdf", make_pdf([""]))


def test_docx_headings_paragraphs_and_tables():
    data = make_docx("Guide", [("Setup", ["Install it.", "Then run it."]), ("Usage", ["Call wombat."])],
                     table=[["flag", "meaning"], ["--all", "everything"]])
    got = sections("guide.docx", data)
    assert got[0] == (("Guide", "Setup"), "setup", "Install it.\nThen run it.", None)
    assert got[1][0] == ("Guide", "Usage") and "Call wombat." in got[1][2]
    assert "flag | meaning" in got[1][2] and "--all | everything" in got[1][2]


def test_pptx_slides_are_sections_with_numbers():
    got = sections("deck.pptx", make_pptx([("Intro", "Wombats archive photos."), ("Pricing", "Free.")]))
    assert got == [(("deck", "Intro"), "slide-1", "Wombats archive photos.", 1),
                   (("deck", "Pricing"), "slide-2", "Free.", 2)]


def test_notebook_keeps_markdown_and_code_and_drops_outputs():
    data = make_notebook([("markdown", "# Tour\nSome prose."), ("code", "import wombat\nwombat.run()"),
                          ("markdown", "## Next\nMore prose.")])
    got = sections("tour.ipynb", data)
    assert got[0][0] == ("Tour",) and "Some prose." in got[0][2] and "```python\nimport wombat" in got[0][2]
    assert got[1][:2] == (("Tour", "Next"), "next")
    assert "OUTPUT-SHOULD-BE-DROPPED" not in str(got)


@pytest.mark.parametrize("name, data, reason", [
    ("bomb.docx", make_zip_bomb(), "decompression bomb"),
    ("bomb.pptx", make_zip_bomb("ppt/slides/slide1.xml"), "decompression bomb"),
    ("fake.docx", b"this is not a zip", "corrupt DOCX"),
    ("fake.pptx", b"PK\x03\x04 truncated", "corrupt PPTX"),
    ("bad.ipynb", b"{not json", "not a valid notebook"),
    ("list.ipynb", b"[1, 2]", "not a valid notebook"),
    ("empty.pdf", b"", "empty file"),
])
def test_bad_office_files_and_notebooks(name, data, reason):
    with pytest.raises(ParseError, match=reason):
        parse(name, data)
