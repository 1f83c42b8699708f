"""What `Assistant.ask` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from indexes.types import Hit


@dataclass(frozen=True)
class Source:
    """A context block given to the model: where it comes from and what it says."""

    n: int  # its number in the prompt, as cited: [n]
    path: str
    url: str | None
    title: str | None
    section: tuple[str, ...]
    score: float
    text: str
    cited: bool = False
    attributed: bool = False  # cited by attribution (its words support a sentence), not by the model

    @classmethod
    def from_hit(cls, n: int, hit: Hit) -> "Source":
        c = hit.chunk
        return cls(n, c.path, c.url, c.title, c.section, hit.score, c.text)

    @property
    def location(self) -> str:
        return self.url or self.path

    def to_dict(self, snippet: int = 300) -> dict[str, Any]:
        text = self.text if len(self.text) <= snippet else self.text[:snippet].rstrip() + "…"
        return {
            "n": self.n, "path": self.path, "url": self.url, "title": self.title,
            "section": list(self.section), "score": round(self.score, 4), "text": text,
            "cited": self.cited, "attributed": self.attributed,
        }


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass
class Answer:
    id: str
    question: str
    text: str
    sources: list[Source]  # the cited (or attributed) sources; all context sources if none is
    retrieved: list[Source]  # every source given to the model, in rank order
    usage: Usage = field(default_factory=Usage)
    latency_ms: dict[str, float] = field(default_factory=dict)
    model: str = ""
    prompt: str = ""
    cost_usd: float = 0.0
    error: str | None = None
    correction: dict[str, Any] | None = None  # the human correction that applied, if any
    # When none applied: corrections near the question, for the asker to confirm (`Assistant.confirm`)
    related_corrections: list[dict[str, Any]] = field(default_factory=list)
    conversation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "question": self.question,
            "answer": self.text,
            "sources": [s.to_dict() for s in self.sources],
            "retrieved": [s.to_dict() for s in self.retrieved],
            "usage": self.usage.to_dict(),
            "latency_ms": {k: round(v, 1) for k, v in self.latency_ms.items()},
            "model": self.model,
            "prompt": self.prompt,
            "cost_usd": self.cost_usd,
            "correction": self.correction,
            "related_corrections": self.related_corrections,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.conversation_id is not None:
            data["conversation_id"] = self.conversation_id
        return data
