"""Retrieved text is data, not instructions.

Documents can carry prompt injection: fake chat-template turns, fake excerpt headers,
"ignore previous instructions", requests to reveal the prompt. Two guarantees that do not
depend on how well a small model behaves:

- `neutral(text)` removes what could pass for prompt structure before the text goes into a
  prompt: chat-template control tokens (which llama.cpp would otherwise parse as real
  turns) and lines posing as excerpt headers.
- `LeakGuard` stops an answer at the first run of `LEAK_WORDS` consecutive words of the
  system prompt, so the instructions are never echoed, streamed or not. While streaming,
  the trailing words that could begin such a run are held back (`held_back`), so not even
  the first words of a withheld run reach the client; ordinary text is not delayed.

Citations need no guard here: only numbers of blocks actually given are parsed back
(`rag.assistant.cited_numbers`).
"""

from __future__ import annotations

import re

# <|im_start|>, <|eot_id|>, <|start_header_id|>, [INST], <<SYS>>, <s>, </s>, <|system|> ...
_CONTROL = re.compile(r"<\|[^<>|\n]{0,40}\|>|\[/?INST\]|<</?SYS>>|</?s>|<\|?/?(?:system|user|assistant)\|?>",
                      re.IGNORECASE)
_FORGED_HEADER = re.compile(r"^(\s*)excerpt(\s*)\[(\d+)\]", re.IGNORECASE | re.MULTILINE)
_WORD = re.compile(r"[a-z0-9]+")
LEAK_WORDS = 8
WITHHELD = "I can't share my instructions. Ask me about the documents instead."


# C0 and C1 controls but tab and newline (they would reach operators' terminals; PostgreSQL
# cannot store NUL), and the bidirectional overrides and isolates that make text read other
# than it is stored (U+202A to U+202E, U+2066 to U+2069).
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str | None) -> str | None:
    """Text from users or files with control characters and bidirectional overrides removed."""
    return _UNPRINTABLE.sub("", text) if text else text


def neutral(text: str) -> str:
    """`text` with chat-template tokens removed and excerpt-like headers defused."""
    text = _CONTROL.sub(" ", text)
    return _FORGED_HEADER.sub(r"\1quoted excerpt\2(\3)", text)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class LeakGuard:
    """Detects `LEAK_WORDS` consecutive words of the secret texts inside an answer."""

    def __init__(self, secrets: list[str], words: int = LEAK_WORDS):
        self.n = words
        self.grams: set[tuple[str, ...]] = set()
        # every run of fewer words: its first words -> the words that follow them
        self._next: dict[tuple[str, ...], set[str]] = {}
        for secret in secrets:
            w = _words(secret)
            self.grams.update(tuple(w[i:i + words]) for i in range(len(w) - words + 1))
            for i in range(len(w)):
                for k in range(min(words - 1, len(w) - i)):
                    self._next.setdefault(tuple(w[i:i + k]), set()).add(w[i + k])

    def held_back(self, text: str) -> int:
        """How many characters at the end of `text` to hold back while streaming: the
        trailing words that could be the start of a run of the secrets (the last word may
        still be growing, so it counts when it is the beginning of the next secret word)."""
        if not self.grams:
            return 0
        spans = [(m.start(), m.group()) for m in _WORD.finditer(text.lower())]
        if not spans:
            return 0
        growing = text[-1:].isalnum()
        words = [w for _, w in spans]
        for k in range(min(self.n - 1, len(words)), 0, -1):
            head, last = tuple(words[-k:-1]), words[-1]
            following = self._next.get(head, ())
            if last in following or (growing and any(f.startswith(last) for f in following)):
                return len(text) - spans[-k][0]
        return 0

    def leaks(self, text: str) -> bool:
        if not self.grams:
            return False
        w = _words(text)
        return any(tuple(w[i:i + self.n]) in self.grams for i in range(len(w) - self.n + 1))
