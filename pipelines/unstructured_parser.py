"""The long tail of formats (e-mail, ODT, EPUB, RTF, spreadsheets, …) through `unstructured`.

Opt-in: install `rag[unstructured]`. Out of the box, unstructured downloads the spaCy
model en_core_web_sm on its first text partition, which fails offline. When that model
is not installed, rag gives unstructured spaCy's rule-based English tokenizer and
sentencizer instead: the same text comes out, but without part-of-speech tags its
title-versus-narrative guesses are rougher. Install en_core_web_sm yourself to get them.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

from indexes.errors import MissingExtraError, ParseError
from pipelines.parse import Document, _Builder

# Extensions handled only by unstructured (everything else has a built-in parser).
LONG_TAIL = (".eml", ".msg", ".odt", ".epub", ".rtf", ".xlsx", ".xls", ".csv", ".tsv", ".org", ".doc", ".ppt")


@lru_cache(maxsize=1)
def _prepare() -> None:
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        import spacy
        import unstructured.nlp.tokenize as tokenize
    except ImportError as exc:
        raise MissingExtraError("unstructured", "unstructured") from exc
    try:
        spacy.load("en_core_web_sm")
    except OSError:
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        tokenize._get_nlp = lambda: nlp  # offline: no download attempt


def parse_unstructured(path: str, data: bytes, default_title: str) -> Document:
    _prepare()
    from unstructured.partition.auto import partition

    try:
        elements = partition(file=io.BytesIO(data), metadata_filename=path)
    except (ImportError, ModuleNotFoundError) as exc:
        raise ParseError(
            f"unstructured needs another package for this file type ({exc.name or exc}); "
            "install it, e.g. pip install 'unstructured[all-docs]' minus its PDF extra"
        ) from None
    except Exception as exc:
        raise ParseError(f"unstructured could not parse the file: {type(exc).__name__}: {exc}") from None
    builder = _Builder(default_title)
    for element in elements:
        text = str(element).strip()
        if not text:
            continue
        if type(element).__name__ == "Title":
            depth = getattr(element.metadata, "category_depth", None) or 0
            builder.heading(depth + 1, text, None)
            builder.add(text)  # its guesses of what is a title are rough: keep the text too
        else:
            builder.add(text)
            builder.add("")
    return builder.document()
