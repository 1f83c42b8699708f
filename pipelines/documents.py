"""Parsers for binary document formats: PDF, DOCX, PPTX, and Jupyter notebooks.

Each takes the file's bytes and returns a `Document`; a file that cannot be read
raises ParseError with the reason. Office files are zips: their uncompressed size is
checked before anything is unpacked, so a decompression bomb is refused cheaply.
"""

from __future__ import annotations

import io
import json
import zipfile

from indexes.errors import MissingExtraError, ParseError
from pipelines.parse import Document, Section, _Builder, parse_markdown

MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
MAX_ZIP_RATIO = 200


def _check_zip(data: bytes, kind: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile:
        raise ParseError(f"corrupt {kind} file (not a valid zip container)") from None
    if total > MAX_UNZIPPED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise ParseError(
            f"{kind} file unpacks to {total // (1024 * 1024)} MiB from {len(data) // 1024} KiB: "
            "refused as a possible decompression bomb"
        )


def _open_office(data: bytes, kind: str, opener):
    """An Office document, after the zip-bomb check; corrupt files become ParseErrors."""
    _check_zip(data, kind)
    try:
        return opener(io.BytesIO(data))
    except Exception as exc:  # the libraries raise many types for malformed XML
        raise ParseError(f"corrupt {kind} file: {exc}") from None


def parse_pdf(data: bytes, default_title: str) -> Document:
    try:
        import pypdf
        from pypdf.errors import PdfReadError
    except ImportError as exc:
        raise MissingExtraError("pypdf", "documents") from exc
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception:
                unlocked = 0
            if not unlocked:
                raise ParseError("encrypted PDF: it needs a password; decrypt it and ingest again")
        title = default_title
        try:
            meta_title = (reader.metadata or {}).get("/Title")
            if isinstance(meta_title, str) and meta_title.strip():
                title = meta_title.strip()
        except Exception:
            pass
        sections = []
        for number, page in enumerate(reader.pages, 1):
            text = (page.extract_text() or "").strip()
            if text:
                sections.append(Section((title,), f"page={number}", text, page=number))
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ParseError(f"corrupt PDF: {exc}") from None
    if not sections:
        raise ParseError("no text found in the PDF (a scanned document? run OCR on it first)")
    return Document(title, sections)


def parse_docx(data: bytes, default_title: str) -> Document:
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError as exc:
        raise MissingExtraError("python-docx", "documents") from exc
    document = _open_office(data, "DOCX", docx.Document)
    core_title = (document.core_properties.title or "").strip()
    builder = _Builder(core_title or default_title)
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(child, document)
            text = paragraph.text.strip()
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            if text and (style == "Title" or style.startswith("Heading")):
                level = 0 if style == "Title" else int("".join(ch for ch in style if ch.isdigit()) or 1)
                builder.heading(level, text, None)
            else:
                builder.add(text)
        elif tag == "tbl":
            for row in Table(child, document).rows:
                builder.add(" | ".join(cell.text.strip() for cell in row.cells))
            builder.add("")
    result = builder.document()
    if core_title:
        result.title = core_title
    return result


def parse_pptx(data: bytes, default_title: str) -> Document:
    try:
        import pptx
    except ImportError as exc:
        raise MissingExtraError("python-pptx", "documents") from exc
    presentation = _open_office(data, "PPTX", pptx.Presentation)
    title = (presentation.core_properties.title or "").strip() or default_title
    sections = []
    for number, slide in enumerate(presentation.slides, 1):
        slide_title = ""
        if slide.shapes.title is not None and slide.shapes.title.has_text_frame:
            slide_title = slide.shapes.title.text_frame.text.strip()
        lines = []
        for shape in slide.shapes:
            if shape == slide.shapes.title:
                continue
            if shape.has_text_frame:
                lines.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    lines.append(" | ".join(cell.text for cell in row.cells))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.append(slide.notes_slide.notes_text_frame.text)
        text = "\n".join(line.strip() for line in lines if line and line.strip())
        if text or slide_title:
            name = slide_title or f"Slide {number}"
            sections.append(Section((title, name), f"slide-{number}", text or slide_title, page=number))
    if not sections:
        raise ParseError("no text found in the presentation")
    return Document(title, sections)


def parse_notebook(data: bytes, default_title: str) -> Document:
    """Markdown cells as Markdown, code cells as fenced code; outputs are dropped."""
    from pipelines.parse import decode

    try:
        notebook = json.loads(decode(data))
    except json.JSONDecodeError as exc:
        raise ParseError(f"not a valid notebook (JSON error at line {exc.lineno})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ParseError("not a valid notebook (no list of cells; nbformat 4 is supported)")
    language = (notebook.get("metadata", {}).get("kernelspec", {}) or {}).get("language", "python")
    parts = []
    for cell in notebook["cells"]:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        if cell.get("cell_type") == "markdown":
            parts.append(source)
        elif cell.get("cell_type") == "code":
            parts.append(f"```{language}\n{source.rstrip()}\n```")
    return parse_markdown("\n\n".join(parts), default_title)


BINARY_PARSERS = {
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".pptx": parse_pptx,
    ".ipynb": parse_notebook,
}
