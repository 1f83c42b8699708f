"""Citations for answers that cite nothing: each sentence is attributed to the context block
whose wording supports it.

Small local models often ignore the instruction to cite. Listing every retrieved block as a
source then says nothing about where the answer came from. What they do instead is copy:
an answer sentence reuses the words of the block it came from. So each sentence gets the
block that holds the largest share of its content words, when that share is high enough
and the sentence has enough content words for the share to mean something. A sentence no
block supports gets no citation; nothing is invented, and the blocks stay the ones the
model was given.

Attribution is marked as such (`Source.attributed`), so a reader can tell "the model cited
this" from "this block holds the words of that sentence". The assistant keeps the answer
text as generated (what was streamed is what is returned); `Attribution.text`, with the
`[n]` written in, is there for callers that want it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.corrections import content_stems

# The end of a sentence: ., ! or ? (with closing quotes or brackets) before white space, or a
# line break. The separators are kept so that the text can be rebuilt exactly.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+|\n+")
_TRAILING = re.compile(r"([.!?:;,]+[\"']?)\s*$")


@dataclass(frozen=True)
class Attribution:
    text: str  # the answer with [n] after each supported sentence
    support: dict[int, float]  # block number -> best share of a sentence's content words it holds


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing separators; "".join(result) == text."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def attribute(text: str, blocks: dict[int, str], min_share: float = 0.6, min_words: int = 4) -> Attribution:
    """Add [n] to each sentence of `text` that block n supports best (`blocks`: number -> text).

    A sentence is supported by a block when at least `min_share` of its (at least
    `min_words`) content words appear in the block; ties go to the lower number (the higher
    ranked block). Code fences are left alone."""
    stems = {n: content_stems(body) for n, body in blocks.items()}
    out: list[str] = []
    support: dict[int, float] = {}
    in_code = False
    for piece in split_sentences(text):
        if piece.count("```") % 2:
            in_code = not in_code
            out.append(piece)
            continue
        words = content_stems(piece)
        if in_code or len(words) < min_words or not stems:
            out.append(piece)
            continue
        scored = sorted(((len(words & s) / len(words), -n) for n, s in stems.items()), reverse=True)
        share, negative = scored[0]
        n = -negative
        if share < min_share:
            out.append(piece)
            continue
        support[n] = max(support.get(n, 0.0), share)
        body = piece.rstrip()
        tail = piece[len(body):]
        end = _TRAILING.search(body)
        punctuation = end.group(1) if end else ""
        core = body[: len(body) - len(punctuation)] if punctuation else body
        out.append(f"{core} [{n}]{punctuation}{tail}")
    return Attribution("".join(out), support)
