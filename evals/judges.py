"""LLM judges over a small protocol: `generate(messages) -> str`. Never imports `rag`.

Small models answer with paragraphs instead of the format asked for; every parser here
finds the verdict anywhere in the reply and returns None when there is none, never a
guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import prompts

Generate = Callable[[list[dict[str, str]]], str]


@dataclass(frozen=True)
class Verdict:
    value: float | str | None  # None: the judge's reply held no verdict
    reason: str
    raw: str


def parse_score(reply: str) -> int | None:
    """A 1-5 score: after 'Score', else a lone digit 1-5 such as '4/5' or '4 out of 5'."""
    m = re.search(r"score\W{0,3}\s*([1-5])\b", reply, re.IGNORECASE)
    if m is None:
        m = re.search(r"\b([1-5])\s*(?:/\s*5|out of 5)\b", reply, re.IGNORECASE)
    if m is None:
        m = re.fullmatch(r"\s*([1-5])\s*\.?\s*", reply)
    return int(m.group(1)) if m else None


def parse_choice(reply: str) -> str | None:
    """'A' or 'B' from a reply that may be a paragraph; None if both or neither is chosen."""
    text = reply.strip()
    m = re.match(r"^\W*(?:answer\s+)?([AB])\b", text, re.IGNORECASE)
    if m:
        return m.group(1).upper()
    said = set(re.findall(r"\b(?:answer|option)\s+([AB])\b\s+is\s+(?:better|more)", text, re.IGNORECASE))
    said |= set(re.findall(r"\b([AB])\s+is\s+(?:better|more faithful|preferable)", text))
    said = {s.upper() for s in said}
    return said.pop() if len(said) == 1 else None


def parse_yes_no(reply: str) -> bool | None:
    m = re.search(r"supported\W{0,3}\s*(yes|no)\b", reply, re.IGNORECASE) or re.match(r"^\W*(yes|no)\b", reply, re.IGNORECASE)
    return None if m is None else m.group(1).lower() == "yes"


def _reason(reply: str) -> str:
    m = re.search(r"reason\W{0,3}\s*(.+)", reply, re.IGNORECASE)
    return (m.group(1) if m else reply).strip()[:300]


def quality(generate: Generate, question: str, reference: str, answer: str) -> Verdict:
    """The reference project's quality_score: 1-5 against a reference answer, with a reason."""
    reply = generate(prompts.load("judge_quality").render(question=question, reference=reference, answer=answer))
    return Verdict(parse_score(reply), _reason(reply), reply)


def pairwise(generate: Generate, question: str, context: str, a: str, b: str) -> Verdict:
    reply = generate(prompts.load("judge_pairwise").render(question=question, context=context, a=a, b=b))
    return Verdict(parse_choice(reply), "", reply)


def faithfulness(generate: Generate, context: str, answer: str) -> Verdict:
    reply = generate(prompts.load("judge_faithfulness").render(context=context, answer=answer))
    verdict = parse_yes_no(reply)
    return Verdict(None if verdict is None else float(verdict), _reason(reply), reply)
