"""Turn a file's bytes into sections of text: (title path, anchor, text).

Markdown, reStructuredText, HTML and plain text. A parser raises ParseError with a
reason a user can act on; the pipeline records it and goes on with the other files.
"""

from __future__ import annotations

import codecs
import html
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePath

from indexes.errors import ParseError


@dataclass
class Section:
    titles: tuple[str, ...]
    anchor: str | None
    text: str
    page: int | None = None  # PDF page or slide number


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)


def slugify(title: str) -> str:
    """The Sphinx/MyST-style id of a section title: lowercase words joined by hyphens."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    text = re.sub(r"[`*]", "", text.lower())
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text or "section"


def _wide_encoding(data: bytes) -> str | None:
    """"UTF-16" or "UTF-32" when the bytes are text in one of those (a byte-order mark, or for
    UTF-16 without one, NUL as every other byte of text in the Latin alphabets), else None."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    head = data[:8192]
    if len(head) >= 8 and b"\x00" in head:  # the byte loop below only for what holds NUL bytes
        even, odd = head[0::2], head[1::2]
        for nuls, chars in ((odd, even), (even, odd)):
            if nuls.count(0) >= 0.9 * len(nuls) and sum(b >= 32 or b in b"\t\n\r" for b in chars) >= 0.9 * len(chars):
                return "UTF-16"
    return None


def decode(data: bytes) -> str:
    """UTF-8 text, or a ParseError saying why these bytes are not a text document."""
    if not data.strip():
        raise ParseError("empty file")
    wide = _wide_encoding(data)
    if wide:
        raise ParseError(f"{wide} text, not UTF-8; convert the file to UTF-8 and ingest again")
    if b"\x00" in data[:8192]:
        raise ParseError("binary content (NUL bytes) in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert the file to UTF-8 and ingest again"
        ) from None
    control = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\t\n\r\f")
    if control > 0.01 * min(len(text), 8192):
        raise ParseError("binary content (control characters) in a text file")
    return text


# --- Markdown ---------------------------------------------------------------------
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^\s*(```|~~~)")
_MYST_LABEL = re.compile(r"^\((?P<label>[^)\s]+)\)=\s*$")
_MD_ATTR_ID = re.compile(r"\s*\{#(?P<id>[\w-]+)\}\s*$")


# Raw HTML in Markdown (tables, <div> wrappers, comments, a page saved as .md): its text is
# kept, its tags are not; script and style content goes whole. Outside code only: `List<int>`
# in backticks or a fenced block stays as written.
_HTML_TAGS = ("a abbr address article aside audio b bdi bdo blockquote body br button caption center cite code col "
              "colgroup dd del details dfn div dl dt em embed fieldset figcaption figure font footer form h1 h2 h3 "
              "h4 h5 h6 head header hr html i iframe img input ins kbd label legend li link main mark meta nav "
              "noscript object ol optgroup option p picture pre q s samp script section select small source span "
              "strike strong style sub summary sup svg table tbody td template textarea tfoot th thead title tr "
              "track tt u ul var video wbr").split()
_HTML_TAG = re.compile(r"</?(?:" + "|".join(_HTML_TAGS) + r")(?:\s[^<>]*)?/?>|<!DOCTYPE[^>]*>", re.IGNORECASE)
_CODE_SPAN = re.compile(r"(`+).+?\1")
_HTML_HIDDEN = re.compile(r"<!--|<(script|style)\b[^>]*>", re.IGNORECASE)


def _without_html(line: str) -> str:
    """The line without HTML tags, and with HTML entities (`&amp;`, `&lt;`) as the characters
    they stand for, outside inline code spans; its words kept."""
    if "<" not in line and "&" not in line:
        return line

    def text(part: str) -> str:
        part = _HTML_TAG.sub(" ", part)
        return html.unescape(part) if "&" in part else part

    parts, last = [], 0
    for code in _CODE_SPAN.finditer(line):
        parts += [text(line[last:code.start()]), code.group(0)]
        last = code.end()
    out = "".join(parts) + text(line[last:])
    if out == line:
        return line
    indent = line[: len(line) - len(line.lstrip())]  # a nested list item keeps its place
    return indent + re.sub(r"[ \t]{2,}", " ", out[len(indent):]).strip()


def _html_comments_and_scripts(lines: list[str]) -> list[str]:
    """The lines with HTML comments and script and style elements blanked outside fenced
    code (they may span lines)."""
    out, fence, closing = [], None, None
    for line in lines:
        if closing is None and (opened := _MD_FENCE.match(line)):
            fence = opened.group(1) if fence is None else (None if opened.group(1) == fence else fence)
        if fence is not None or (closing is None and "<" not in line):
            out.append(line)
            continue
        kept, rest = "", line
        while rest:
            if closing is not None:
                end = rest.lower().find(closing)
                rest, closing = ("", closing) if end < 0 else (rest[end + len(closing):], None)
                continue
            start = _HTML_HIDDEN.search(rest)
            if start is None:
                kept += rest
                break
            kept += rest[:start.start()]
            closing = "-->" if start.group(0) == "<!--" else f"</{start.group(1).lower()}>"
            rest = rest[start.end():]
        out.append(kept)
    return out


def parse_markdown(text: str, default_title: str) -> Document:
    lines = _html_comments_and_scripts(text.splitlines())
    if lines and lines[0].strip() == "---":  # front matter
        for end in range(1, len(lines)):
            if lines[end].strip() in ("---", "..."):
                lines = lines[end + 1 :]
                break
    builder = _Builder(default_title)
    in_fence, label = None, None
    for i, line in enumerate(lines):
        fence = _MD_FENCE.match(line)
        if fence:
            if in_fence is None:
                in_fence = fence.group(1)
            elif fence.group(1) == in_fence:
                in_fence = None
            builder.add(line)
            continue
        if in_fence is None:
            if m := _MYST_LABEL.match(line):
                label = m.group("label")
                continue
            heading = _MD_HEADING.match(line)
            setext = (
                i + 1 < len(lines) and line.strip() and not line.startswith((" ", "\t", "-", "*", ">"))
                and re.fullmatch(r"=+\s*|-{3,}\s*", lines[i + 1])
            )
            if heading:
                title = heading.group(2)
                if m := _MD_ATTR_ID.search(title):
                    title, label = title[: m.start()], m.group("id")
                builder.heading(len(heading.group(1)), _plain(title), label)
                label = None
                continue
            if setext:
                builder.heading(1 if lines[i + 1].startswith("=") else 2, _plain(line.strip()), label)
                builder.skip_next = True
                label = None
                continue
        if builder.skip_next:
            builder.skip_next = False
            continue
        builder.add(line if in_fence is not None else _without_html(line))
    return builder.document()


def _plain(title: str) -> str:
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # links
    title = re.sub(r":\w+:`([^`]*)`", r"\1", title)  # roles
    return title.replace("`", "").replace("**", "").strip()


# --- reStructuredText -------------------------------------------------------------
_RST_ADORN = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")
_RST_LABEL = re.compile(r"^\.\.\s+_(?P<label>[^:`]+):\s*$")


def parse_rst(text: str, default_title: str) -> Document:
    lines = text.splitlines()
    builder = _Builder(default_title)
    styles: list[tuple[str, bool]] = []  # adornment styles in order of first use = levels
    labels: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _RST_LABEL.match(line):
            labels.append(m.group("label").strip())
            i += 1
            continue
        over = (
            _RST_ADORN.match(line) and i + 2 < len(lines) and lines[i + 1].strip()
            and _RST_ADORN.match(lines[i + 2]) and lines[i + 2][0] == line[0]
            and len(lines[i + 2].rstrip()) >= len(lines[i + 1].strip())
        )
        under = (
            not over and line.strip() and not line.startswith((" ", "\t")) and i + 1 < len(lines)
            and _RST_ADORN.match(lines[i + 1]) and len(lines[i + 1].rstrip()) >= len(line.rstrip())
        )
        if over or under:
            title = lines[i + 1].strip() if over else line.strip()
            style = (lines[i][0] if over else lines[i + 1][0], bool(over))
            if style not in styles:
                styles.append(style)
            builder.heading(styles.index(style) + 1, _plain(title), labels[-1] if labels else None)
            labels = []
            i += 3 if over else 2
            continue
        if line.strip():
            labels = []
        builder.add(line)
        i += 1
    return builder.document()


# --- HTML ---------------------------------------------------------------------------
def parse_html(text: str, default_title: str) -> Document:
    try:
        from bs4 import BeautifulSoup
    except ImportError as exc:
        from indexes.errors import MissingExtraError

        raise MissingExtraError("beautifulsoup4", "html") from exc
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "nav", "noscript", "template", "head"]):
        if tag.name == "head":
            title = tag.find("title")
            if title and title.get_text(strip=True):
                default_title = title.get_text(strip=True)
        tag.decompose()
    builder = _Builder(default_title)
    body = soup.body or soup
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "th", "dt", "dd", "blockquote"]):
        if element.find_parent(["p", "li", "pre", "td", "th", "dt", "dd", "blockquote"]) is not None:
            continue
        if element.name[0] == "h" and element.name[1:].isdigit():
            anchor = element.get("id")
            if not anchor and element.parent is not None and element.parent.name == "section":
                anchor = element.parent.get("id")
            title = element.get_text(" ", strip=True).rstrip("#¶ ").strip()
            builder.heading(int(element.name[1]), title, anchor)
        else:
            sep = "" if element.name == "pre" else " "
            builder.add(element.get_text(sep, strip=element.name != "pre"))
            builder.add("")
    return builder.document()


def parse_text(text: str, default_title: str) -> Document:
    return Document(default_title, [Section((default_title,), None, text.strip())])


class _Builder:
    """Collects lines under the current title path."""

    def __init__(self, default_title: str):
        self.default_title = default_title
        self.stack: list[tuple[int, str, str]] = []  # (level, title, anchor)
        self.lines: list[str] = []
        self.sections: list[Section] = []
        self.title: str | None = None
        self.skip_next = False

    def _flush(self):
        text = "\n".join(self.lines).strip()
        if text:
            titles = tuple(t for _, t, _ in self.stack) or (self.title or self.default_title,)
            anchor = self.stack[-1][2] if self.stack else None
            self.sections.append(Section(titles, anchor, text))
        self.lines = []

    def heading(self, level: int, title: str, anchor: str | None):
        self._flush()
        if self.title is None:
            self.title = title
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title, anchor or slugify(title)))

    def add(self, line: str):
        self.lines.append(line)

    def document(self) -> Document:
        self._flush()
        return Document(self.title or self.default_title, self.sections)


PARSERS = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".rst": parse_rst,
    ".txt": parse_text,
    ".html": parse_html,
    ".htm": parse_html,
}


def parse(path: str, data: bytes, parser: str = "auto") -> Document:
    """Parse one file's bytes by its extension (`parser="unstructured"`: always unstructured)."""
    from pipelines.documents import BINARY_PARSERS
    from pipelines.unstructured_parser import LONG_TAIL, parse_unstructured

    suffix = PurePath(path).suffix.lower()
    stem = PurePath(path).stem
    if parser == "unstructured" or suffix in LONG_TAIL:
        if not data.strip():
            raise ParseError("empty file")
        document = parse_unstructured(path, data, stem)
    elif suffix in BINARY_PARSERS:
        if not data.strip():
            raise ParseError("empty file")
        document = BINARY_PARSERS[suffix](data, stem)
    elif suffix in PARSERS:
        document = PARSERS[suffix](decode(data), stem)
    else:
        raise ParseError(f"unsupported file type {suffix or '(none)'}")
    if not document.sections:
        raise ParseError("no text found")
    return document
