"""`Assistant`: retrieve, build the prompt, one LLM call, an answer with its sources."""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import re
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

import prompts
from indexes import Hit, IndexNotFoundError, VectorIndex, open_index
from indexes.errors import LLMError
from pipelines.chunk import ChunkingConfig
from pipelines.discover import display_path
from pipelines.embed import Embedder, canonical_name, load_embedder
from pipelines.ingest import IngestOptions, IngestReport, ingest
from indexes.corrections import (ASKER_REASON, ASKER_REVIEW, AnswerRecord, Correction, CorrectionStore, Feedback, now,
                                 open_corrections)
from indexes.errors import ConfigError, ConflictError, NotFoundError, RagError
from rag.attribution import attribute
from rag.config import Config
from rag.corrections import Matcher, correction_info, embed_once, opposed, question_key, same_words
from rag.guard import WITHHELD, LeakGuard, neutral
from rag.llm import ChatModel, Completion, load_chat, load_job_chat
from rag.pricing import cost_usd, price_table
from rag.retrieval import Reranker, RetrievalSettings, Retriever, load_reranker
from rag.types import Answer, Source, Usage

log = logging.getLogger(__name__)
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_DO_NOT_KNOW = re.compile(r"\b(?:do not|don['’]t|cannot|can['’]t) (?:know|find|answer)\b", re.IGNORECASE)


def cited_numbers(text: str, available: int) -> list[int]:
    """The source numbers cited as [n] or [n, m] in `text` that exist, in order of first use."""
    seen: list[int] = []
    for group in _CITATION.findall(text):
        for part in group.split(","):
            n = int(part)
            if 1 <= n <= available and n not in seen:
                seen.append(n)
    return seen


def citation_grammar(blocks: int, sentences: int = 3) -> str:
    """GBNF for an answer of up to `sentences` statements (8 to 200 characters, which may hold
    more than one sentence), each ending with a citation of one of the `blocks` context
    blocks, or "I do not know." Small local models that ignore the
    citation instruction follow a grammar: llama.cpp masks every token that would break it."""
    cite = " | ".join(f'"{n}"' for n in range(1, blocks + 1))
    if not cite:
        return 'root ::= "I do not know."'
    return (f'root ::= answer | "I do not know."\n'
            f'answer ::= sentence (" " sentence){{0,{sentences - 1}}}\n'
            f'sentence ::= words " [" cite "]."\n'
            f'words ::= [^\\[\\]\\n]{{8,200}}\n'
            f'cite ::= {cite}\n')


def answer_key(answer: str) -> str:
    """A correction's answer as the margin check compares it: case, spacing and end punctuation aside."""
    return " ".join(answer.casefold().split()).rstrip(" .!?;:")


class Assistant:
    """Question answering over an index. Cheap to construct; models load on first use."""

    def __init__(self, config: Config | None = None, *, index: VectorIndex | None = None,
                 embedder: Embedder | None = None, llm: ChatModel | None = None,
                 job_llms: dict[str, ChatModel] | dict[str, dict[str, str]] | None = None, **overrides: Any):
        if index is not None and not isinstance(index, VectorIndex):  # a location: Assistant(index=".rag")
            overrides["index"], index = str(index), None
        if job_llms and any(isinstance(v, dict) for v in job_llms.values()):  # the setting: {"job": {"base_url": ...}}
            if not all(isinstance(v, dict) for v in job_llms.values()):
                raise ConfigError("job_llms: give every job a spec ({'base_url': ..., 'model': ...}) or every job "
                                  "a chat model object, not both")
            overrides["job_llms"], job_llms = job_llms, None
        self.config = config if config is not None else Config.load(**overrides)
        if config is not None and overrides:
            self.config = config.updated(**overrides)
        self._index, self._embedder, self._llm = index, embedder, llm
        self._job_llms: dict[str, ChatModel] = dict(job_llms or {})
        self._retriever: Retriever | None = None
        self._reranker: Reranker | None = None
        self._corrections: CorrectionStore | None = None

    # -- parts, built on first use -------------------------------------------------------
    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = open_index(self.config.index, self.config.pg_ef_search)
        return self._index

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.config.embedding_model, batch_size=self.config.embed_batch_size,
                                           backend=self.config.embedding_backend)
        return self._embedder

    @property
    def llm(self) -> ChatModel:
        if self._llm is None:
            self._llm = load_chat(self.config)
        return self._llm

    def llm_for(self, job: str) -> ChatModel:
        """The chat model for one job: "rewrite", "rerank" or "judge" (config `job_llms`),
        else the answering model."""
        if job not in self._job_llms:
            self._job_llms[job] = load_job_chat(self.config, job) or self.llm
        return self._job_llms[job]

    def rewrite(self, question: str, history: list[dict[str, str]]) -> str:
        """A follow-up question made standalone from the conversation (one call, its own prompt).
        `history`: [{"role": "user"|"assistant", "content": ...}], oldest first. When the model's
        rewrite is not a question, the questions asked before in `history` and this one, together."""
        return self._follow_up(question, history)[0]

    def _follow_up(self, question: str, history: list[dict[str, str]]) -> tuple[str, bool]:
        """(the question to retrieve and answer, whether it is the model's rewrite)."""
        if not history:
            return question, False
        recent = history[-2 * self.config.history_turns:] if self.config.history_turns else []
        if not recent:
            return question, False
        lines = [f"{m['role']}: {neutral(m['content'][:800])}" for m in recent]
        prompt = prompts.load("rewrite", self.config.prompts_dir)
        text = self.llm_for("rewrite").complete(prompt.render(history="\n".join(lines), question=neutral(question)),
                                                max_tokens=64).text
        rewritten = text.strip().splitlines()[0].strip().strip('"') if text.strip() else ""
        if _standalone(rewritten, question):
            return rewritten, True
        # not a question (a small model may answer instead): the questions asked before, then this
        # one, the latest kept whole within 400 characters (the history holds questions as asked)
        together = question
        for m in reversed(recent):
            before = m["content"].strip()
            if m["role"] != "user" or not before or before in together:
                continue
            if len(before) + len(together) >= 400:
                break
            together = f"{before} {together}"
        return together, False

    def warm_up(self) -> "Assistant":
        """Load the embedding model and the LLM now instead of on the first question."""
        self.embedder.warm_up()
        self.embedder.embed_query("warm up")  # a backend may embed questions with its own model
        self.llm.warm_up()
        return self

    # -- ingestion -----------------------------------------------------------------------
    def ingest_options(self) -> IngestOptions:
        c = self.config
        return IngestOptions(
            embedding_model=c.embedding_model,
            embedding_backend=c.embedding_backend,
            chunking=ChunkingConfig(c.chunk_tokens, c.chunk_overlap),
            extensions=tuple(c.extensions),
            source_url=c.source_url,
            parser=c.parser,
            max_file_mb=c.max_file_mb,
            parse_timeout=c.parse_timeout,
            embed_batch_size=c.embed_batch_size,
            embed_actors=c.embed_actors,
        )

    def ingest(self, paths: list[str], on_progress=None) -> IngestReport:
        """Bring the index up to date with the files under `paths`. Corrections that cite a
        file that changed or disappeared are flagged for review."""
        report = ingest([str(p) for p in paths], self.index, self.ingest_options(), on_progress)
        if report.changed_paths:
            self.corrections.flag_for_review(report.changed_paths, "a cited file changed or was removed")
        return report

    # -- corrections and feedback ----------------------------------------------------
    @property
    def corrections(self) -> CorrectionStore:
        """The corrections store and answer log that live with the index."""
        if self._corrections is None:
            self._corrections = open_corrections(self.index)
        return self._corrections

    @property
    def matcher(self) -> Matcher:
        """The index's matcher, with the LLM judge's zone as configured when there is a judge."""
        matcher = Matcher.from_dict(self.corrections.get_meta("matcher"))
        zone = {"judge_floor": self.config.corrections_judge_floor, "judge_min": self.config.corrections_judge_min}
        zone = {k: v for k, v in zone.items() if v is not None and self.config.corrections_judge == "llm"}
        return dataclasses.replace(matcher, **zone) if zone else matcher

    def find_correction(self, question: str, vector: np.ndarray | None = None) -> tuple[Correction, float, str] | None:
        """The active correction whose question asks the same as `question`, if any."""
        return self._lookup(question, vector)[0]

    def related_corrections(self, question: str, vector: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The corrections to offer the asker of `question` when none applies (`_related`;
        at most `corrections_offers`), else []."""
        return self._lookup(question, vector, offers=self.config.corrections_offers)[1]

    def _lookup(self, question: str, vector: np.ndarray | None = None,
                offers: int = 0) -> tuple[tuple[Correction, float, str] | None, list[dict[str, Any]]]:
        """(the active correction that applies to `question`, if any: (it, similarity, why); when
        none does, at most `offers` to offer the asker: `_related`)."""
        if vector is None:
            vector = self.embedder.embed_query(question)
        judge = self._judge_calls(self.config.corrections_judge_calls) if self.config.corrections_judge == "llm" else None
        embed = embed_once(self.embedder.embed_queries, {question: vector})  # the classifier's texts recur across candidates
        matcher = self.matcher
        verdicts = []
        for verdict in self._weigh(question, vector, judge, matcher, embed):
            verdicts.append(verdict)
            candidate, target, similarity, matched, why, _ = verdict
            if not matched or candidate.not_same_as:
                continue
            correction = self.corrections.get(target) if candidate.same_as else candidate
            if correction is not None and correction.active:
                why += f", as linked question {candidate.id}" if candidate.same_as else ""
                return (correction, similarity, why), []
        return None, (self._related(question, verdicts, matcher, embed, offers) if offers > 0 else [])

    def _related(self, question: str, verdicts: list, matcher: Matcher, embed, limit: int,
                 scores: int = 4) -> list[dict[str, Any]]:
        """Of the corrections the matcher did not apply to `question` (`verdicts`, from `_weigh`),
        those that may answer it, nearest first, at most `limit`: each one's question (or a
        question linked `same_as` it) at least the offer floor similar (`corrections_offer_floor`,
        else the matcher's `offer_floor`, below its review floor) and not about something else
        by the offers' bar (`offer_related_min`),
        and no `not_same_as` link ruling it out for the question. At most `scores` of them
        are classified anew (about 40 ms each below the band). For the asker to confirm
        (`confirm`): [{"id", "question", "similarity", "probability"}]."""
        floor, key = self.config.corrections_offer_floor, question_key(question)
        floor = matcher.offer_floor if floor is None else floor
        ruled_out = {target for candidate, target, _, matched, _, _ in verdicts
                     if candidate.not_same_as and (matched or question_key(candidate.question) == key)}
        found: list[dict[str, Any]] = []
        for candidate, target, similarity, matched, _, p in verdicts:  # nearest first
            if similarity < floor or len(found) >= limit:
                break
            if matched or candidate.not_same_as or target in ruled_out or target in {f["id"] for f in found}:
                continue
            if p is None:  # below the band, or about something else by the matcher's bar: by the offers' bar?
                lower_bar = matcher.offer_related_min is not None and matcher.offer_related_min < matcher.related_min
                if (not matcher.legacy and opposed(candidate.question, question)) or (
                        similarity >= matcher.band and not lower_bar):
                    continue  # never the same question, or the same bar said no: no classifier call
                if scores <= 0:
                    break
                scores -= 1
                p = matcher.score(candidate.question, question, similarity, embed, offer=True)
            if p is None:  # about something else
                continue
            correction = candidate if target == candidate.id else self.corrections.get(target)
            if correction is not None and correction.active:
                found.append({"id": correction.id, "question": correction.question,
                              "similarity": round(similarity, 4), "probability": round(p, 4)})
        return found

    def _weigh(self, question: str, vector: np.ndarray, judge, matcher: Matcher | None = None, embed=None):
        """The matcher's verdict on the stored questions nearest `question` (16, of at most 8
        corrections), nearest first: (row, its correction's id, similarity, matched, why,
        classifier probability).

        Questions people linked to a correction count as its own: of the correction's
        questions that match, the nearest decides, and the correction's later rows are
        skipped. A `same_as` link applies it to the linked question in its own words (case,
        punctuation, auxiliaries and word forms aside; with an LLM judge, to what the judge
        takes for the same question); a `not_same_as` link keeps it from applying to what
        the matcher takes for that question (a near miss a human has seen).

        Where the classifier alone decides (no LLM judge), a correction does not apply if
        another with a different answer (case, spacing and end punctuation aside) is nearly as
        near: one of its questions among these rows is within `corrections_margin` of this
        one's similarity, and neither the opposite-words rule nor a `not_same_as` link rules
        it out for this question. Which of the two the question asks for is a reviewer's call
        (it goes to the review queue)."""
        matcher = matcher or self.matcher
        embed = embed or self.embedder.embed_queries
        model = canonical_name(self.config.embedding_model)
        rows = [(c, s) for c, s in self.corrections.nearest(vector, 16)
                if c is not None and c.active and c.model == model]  # not removed or disabled since the view was built
        answers: dict[str, str | None] = {}  # a correction's answer as compared (None: gone or disabled)
        ruled_out: dict[str, bool] = {}  # a reviewer linked this question (or what the matcher takes for it) not_same_as it

        def answer_of(correction_id: str, row: Correction) -> str | None:
            if correction_id not in answers:
                c = row if row.id == correction_id else self.corrections.get(correction_id)
                answers[correction_id] = answer_key(c.answer) if c is not None and c.active else None
            return answers[correction_id]

        def rival_of(target: str, similarity: float, row: Correction) -> tuple[str, float] | None:
            margin = self.config.corrections_margin
            if margin <= 0:
                return None
            mine = answer_of(target, row)
            for other, s in rows:  # nearest first
                rival = other.same_as or (None if other.not_same_as else other.id)
                if rival is None or rival == target or s < similarity - margin or other.unreviewed:
                    continue
                if not matcher.legacy and opposed(other.question, question):
                    continue  # never the same question as this one
                if answer_of(rival, other) in (None, mine):
                    continue
                if rival not in ruled_out:
                    ruled_out[rival] = any(
                        link.not_same_as == rival and matcher.assess(link.question, question, t, None, embed)[0]
                        for link, t in rows)
                if not ruled_out[rival]:
                    return rival, s
            return None

        decided, seen = set(), set()
        for candidate, similarity in rows:
            target = candidate.linked_to or candidate.id
            if target in decided or (target not in seen and len(seen) >= 8):
                continue  # at most 8 corrections, each with its questions among the 16 nearest
            seen.add(target)
            matched, why, p = matcher.assess(candidate.question, question, similarity, judge, embed)
            if matched and candidate.same_as and not (judge is not None or similarity >= matcher.accept
                                                      or same_words(candidate.question, question)):
                # A reviewer vouched for that wording, not for the near misses of it: another
                # wording of a linked question is for the correction's own question (or the judge).
                matched, why = False, f"{why}; but a linked question holds only in its own words"
            if (matched and p is not None and judge is None and not candidate.not_same_as
                    and (rival := rival_of(target, similarity, candidate))):
                matched, why = False, (f"{why}; but correction {rival[0]}, with another answer, is nearly as near "
                                       f"({rival[1]:.3f}): a reviewer's call")
            if matched:
                decided.add(target)
            yield candidate, target, similarity, matched, why, p

    def overlapping_corrections(self) -> list[dict[str, Any]]:
        """Pairs of active corrections whose questions the matcher takes for the same question
        (the classifier, the same words, or a similarity at or above `accept`; a question linked
        `same_as` a correction counts as its own), with answers that differ (case, spacing and
        end punctuation aside), and that no reviewer has told apart (a `not_same_as` link of one
        correction's question, in its words, to the other): which answer a question between them
        gets is a guess, and where the classifier decides neither applies (`corrections_margin`).
        Keep one (disable the other), or make the answers agree. Each pair once, nearest first:
        {"a": id, "b": id, "a_question", "b_question", "similarity", "why"}."""
        model = canonical_name(self.config.embedding_model)
        everything = self.corrections.list(include_inactive=False)
        stored = [c for c in everything if c.linked_to is None and c.model == model]
        if len(stored) < 2:
            return []
        vectors = self.embedder.embed_queries([c.question for c in stored])
        embed = embed_once(self.embedder.embed_queries, {c.question: v for c, v in zip(stored, vectors)})
        apart = self._told_apart(everything)
        matcher, found, seen = self.matcher, [], set()
        for c, vector in zip(stored, vectors):
            for overlap in self._overlaps(c, vector, embed, matcher, apart):
                if frozenset((c.id, overlap["b"])) not in seen:
                    seen.add(frozenset((c.id, overlap["b"])))
                    found.append(overlap)
        return sorted(found, key=lambda f: -f["similarity"])

    def overlaps_of(self, correction: Correction) -> list[dict[str, Any]]:
        """The active corrections that answer what the matcher takes for `correction`'s
        question, differently: as `overlapping_corrections`, for one (of its 16 nearest rows)."""
        if correction.linked_to or not correction.active:
            return []
        vector = self.corrections.embedding(correction.id)  # as written: no second embedding
        if vector is None:
            vector = self.embedder.embed_query(correction.question)
        embed = embed_once(self.embedder.embed_queries, {correction.question: vector})
        return self._overlaps(correction, vector, embed, self.matcher,
                              self._told_apart(self.corrections.list(include_inactive=False)))

    @staticmethod
    def _told_apart(corrections: list[Correction]) -> set[tuple[str, str]]:
        """(correction id, question key) for each `not_same_as` link: that question is not the correction's."""
        return {(c.not_same_as, question_key(c.question)) for c in corrections if c.not_same_as}

    def _overlaps(self, correction: Correction, vector: np.ndarray, embed, matcher: Matcher,
                  apart: set[tuple[str, str]]) -> list[dict[str, Any]]:
        model = canonical_name(self.config.embedding_model)
        if correction.model != model:
            return []
        mine, key = answer_key(correction.answer), question_key(correction.question)
        found, done = [], {correction.id}
        for row, similarity in self.corrections.nearest(vector, 16):  # nearest first: a correction's nearest question decides
            if row is None or row.not_same_as or not row.active or row.model != model or row.unreviewed:
                continue
            other_id = row.same_as or row.id
            if other_id in done:
                continue
            other = row if other_id == row.id else self.corrections.get(other_id)
            if other is None or not other.active or answer_key(other.answer) == mine:
                continue
            if (other_id, key) in apart or (correction.id, question_key(other.question)) in apart:
                continue  # a reviewer linked one's question not_same_as the other
            matched, why, _ = matcher.assess(row.question, correction.question, similarity, None, embed)
            if matched:
                done.add(other_id)
                found.append({"a": correction.id, "b": other_id, "a_question": correction.question,
                              "b_question": row.question, "similarity": round(similarity, 4), "why": why})
        return found

    def suggest_links(self, limit: int = 20, scan: int = 1000, min_similarity: float | None = None) -> list[dict[str, Any]]:
        """Questions a correction probably answers that it was not applied to: for a reviewer
        to confirm (`correct(answer_id=..., same_as=...)`) or rule out (`not_same_as=`).

        Of the last `scan` answers the model gave, each question (its newest answer; case,
        punctuation and contractions aside) that an active correction did not get, although
        the correction's question, or a question linked `same_as` it, is at least
        `min_similarity` similar (default: the matcher's `review_floor`: the cosine at or
        above which 90% of its calibration paraphrases are, at most 0.1 below its band)
        and not about something else. The classifier decides; an LLM judge is not asked, so
        with one configured a pair the classifier accepts is suggested too. A question linked
        to the correction either way is not suggested again, nor one an active correction now
        answers. Questions an asker linked (`confirm`) that no reviewer has checked come first,
        whenever they were asked (`asker_link`; `asker_link_applies` when askers' links apply at
        once), unless a correction answers one now while its link waits; then those with
        thumbs-down feedback on any of their answers; within each, the likeliest paraphrases
        first (`confirmed_by_asker`, `bad_feedback`, `probability`)."""
        groups: dict[str, list] = {}
        for record in self.corrections.recent_answers(scan):  # newest first
            groups.setdefault(question_key(record.question), []).append(record)
        stored = self.corrections.list(include_inactive=True)
        active = {c.id for c in stored if c.active and c.linked_to is None}
        # questions an asker linked that no reviewer has checked, whenever they were asked
        confirmed = [c for c in stored if c.unreviewed and c.same_as in active]
        if not (groups or confirmed) or not active:
            return []
        linked = {(c.linked_to, question_key(c.question)) for c in stored if c.linked_to}
        bad = {f.answer_id for f in self.corrections.list_feedback(bad_only=True)}
        matcher = self.matcher
        floor = matcher.review_floor if min_similarity is None else min_similarity
        judge = (lambda a, b: False) if self.config.corrections_judge == "llm" else None
        newest = [records[0] for records in groups.values()]
        vectors = self.embedder.embed_queries([r.question for r in newest]) if newest else []
        # The classifier's features embed variants of both questions: a correction's question
        # and a logged one recur across pairs, so each text is embedded once per scan.
        embed = embed_once(self.embedder.embed_queries, {r.question: v for r, v in zip(newest, vectors)})
        suggestions = []
        by_id = {c.id: c for c in stored}
        for link in confirmed:  # an asker said it is the same question: a reviewer's yes or no first
            correction = by_id[link.same_as]
            records = groups.get(question_key(link.question), [])
            verdicts = self._weigh(link.question, embed([link.question])[0], judge, matcher, embed)
            if link.pending and self._answered(verdicts, active):
                continue  # a correction answers it now, whatever the asker said
            va, vb = embed([correction.question, link.question])
            similarity = float(va @ vb)
            p = matcher.score(correction.question, link.question, similarity, embed)
            # the asker's answer, if this index logged it (an imported link's was logged elsewhere)
            answer_id = link.replaces_answer_id
            if answer_id and self.corrections.get_answer(answer_id) is None:
                answer_id = records[0].id if records else None
            suggestions.append({
                "answer_id": answer_id, "question": link.question,
                "created_at": link.created_at, "times_asked": len(records) or 1,
                "bad_feedback": any(r.id in bad for r in records), "confirmed_by_asker": True,
                "asker_link": link.id, "asker_link_applies": link.active,
                "correction_id": correction.id, "correction_question": correction.question,
                "nearest_question": correction.question, "similarity": round(similarity, 4),
                "probability": round(p if p is not None else 0.0, 4),
            })
        waiting = {question_key(link.question) for link in confirmed}
        for (key, records), vector in zip(groups.items(), vectors):
            record = records[0]
            if key in waiting:
                continue  # listed above, for the correction the asker confirmed
            verdicts = list(self._weigh(record.question, vector, judge, matcher, embed))
            settled = {target for _, target, _, matched, _, _ in verdicts if matched}
            if self._answered(verdicts, active):
                continue  # a correction answers it now (as `find_correction` would, judge aside): no miss to review
            near = []
            for candidate, target, similarity, matched, _, p in verdicts:
                if (matched or target in settled or candidate.not_same_as or similarity < floor
                        or target not in active or (target, key) in linked):
                    continue
                if p is None and similarity < matcher.band:  # the band turned it down before the classifier
                    p = matcher.score(candidate.question, record.question, similarity, embed)
                if p is not None:
                    near.append((p, candidate, target, similarity))
            if not near:
                continue
            # the nearest of them: the likeliest by the classifier is another correction's far more
            # often (benchmarks/queue_all_stored.py); the classifier's probability orders the queue
            p, candidate, target, similarity = max(near, key=lambda v: v[3])
            correction = candidate if target == candidate.id else self.corrections.get(target)
            if correction is None:
                continue
            suggestions.append({
                "answer_id": record.id, "question": record.question, "created_at": record.created_at,
                "times_asked": len(records), "bad_feedback": any(r.id in bad for r in records),
                "confirmed_by_asker": False, "asker_link": None, "asker_link_applies": False,
                "correction_id": correction.id, "correction_question": correction.question,
                "nearest_question": candidate.question, "similarity": round(similarity, 4), "probability": round(p, 4),
            })
        suggestions.sort(key=lambda s: (not s["confirmed_by_asker"], not s["bad_feedback"], -s["probability"]))
        return suggestions[:limit]

    def _judge(self, a: str, b: str) -> bool:
        """The LLM judge: True only for a reply that says SAME and neither DIFFERENT nor NOT
        (a small model that echoes "Same or different?" has said nothing)."""
        prompt = prompts.load("same_question", self.config.prompts_dir)
        words = set(re.findall(r"[A-Z]+", self.llm_for("judge").complete(prompt.render(a=a, b=b), max_tokens=4).text.upper()))
        return "SAME" in words and not words & {"DIFFERENT", "NOT"}

    def _judge_calls(self, limit: int) -> Callable[[str, str], bool]:
        """The judge for one question: after `limit` calls it says no without asking (the
        nearest corrections are judged first), so a question costs at most `limit` calls."""
        calls = 0

        def judge(a: str, b: str) -> bool:
            nonlocal calls
            calls += 1
            return calls <= limit and self._judge(a, b)
        return judge

    def correct(self, answer: str | None = None, *, answer_id: str | None = None, question: str | None = None,
                reason: str | None = None, author: str = "unknown", sources: list[str] | None = None,
                same_as: str | None = None, not_same_as: str | None = None) -> Correction:
        """Record a human correction for a logged answer (by id) or for a question.

        Correcting an answer that another correction gave replaces that one for the question:
        asked in the same words, it is disabled (its answer was wrong); otherwise the question
        is linked `not_same_as` it (it answered another question).

        With `same_as=ID` instead of an answer, the question asks what correction ID answers
        (a paraphrase its matcher missed): ID's answer now applies to it, in its own words.
        With `not_same_as=ID`, it asks something else (ID was applied wrongly): ID no longer
        applies to it, nor to what the matcher takes for its rewordings."""
        if same_as or not_same_as:
            if sources:
                raise RagError("A linked question has no sources of its own; its correction's apply.")
            return self._link(answer, answer_id, question, reason, author, same_as, not_same_as)
        if answer is None:
            raise RagError("A correction needs the corrected answer (or same_as / not_same_as a correction).")
        bad_answer, record = None, None
        if answer_id is not None:
            record = self._logged(answer_id)
            question = question or record.question
            bad_answer = record.answer
            if sources is None:  # the files it cited (a correction that gave it is no file: it is replaced)
                files = [s for s in record.sources if not str(s["path"]).startswith("correction:")]
                sources = [s["path"] for s in files if s.get("cited")] or [s["path"] for s in files]
        if not (question or "").strip() or not answer.strip():
            raise RagError("A correction needs a question (or the id of a logged answer) and the corrected answer.")
        question = question.strip()
        # The newest correction of a question stands (stamped after the newest there, whatever
        # this machine's clock says), and replaces the others. After the write the question's
        # corrections are read back and all but the newest replaced: whatever the order of two
        # reviewers' writes, the last to clean up sees both, and one stands.
        stamp, before = now(), self._answering(question)
        if before and before[-1].created_at >= stamp:
            stamp = (datetime.fromisoformat(before[-1].created_at) + timedelta(microseconds=1)).isoformat(
                timespec="microseconds")
        correction = Correction(
            question=question, answer=answer.strip(), author=author, reason=reason, replaces_answer_id=answer_id,
            bad_answer=bad_answer, sources=list(dict.fromkeys(source_key(s) for s in sources or [] if s.strip())),
            model=canonical_name(self.config.embedding_model), created_at=stamp,
        )
        self.corrections.add(correction, self.embedder.embed_query(question))
        rivals = self._answering(question)
        winner = max(rivals + [correction], key=lambda c: (c.created_at, c.id))
        for old in rivals:
            if old.id != winner.id:
                self._supersede(old, winner)
        if winner.id != correction.id:
            raise ConflictError(f"Another reviewer ({winner.author}) corrected this question at the same moment; "
                                f"their correction {winner.id} stands. Correct it again to change it.")
        self._drop_asker_links(question)  # it has its own answer now
        gave = self.corrections.get(record.correction_id) if record is not None and record.correction_id else None
        if gave is not None and gave.active and not gave.linked_to:  # the correction that gave the bad answer
            if question_key(gave.question) == question_key(question):
                self._supersede(gave, correction)
            elif not any(c.not_same_as for c in self.linked_questions(gave.id, question)):
                self._link(None, None, question, reason, author, None, gave.id)
        return correction

    def _supersede(self, old: Correction, new: Correction) -> None:
        """Disable `old`, which `new` replaces for the same question, and move the questions
        reviewers linked to it over to `new`: they asked (or did not ask) that question, whoever
        answers it now. A question already linked to `new` keeps that link."""
        self.corrections.update(old.id, active=False)
        taken = {question_key(c.question) for c in self.corrections.list(include_inactive=True) if c.linked_to == new.id}
        for link in self.corrections.list(include_inactive=True):
            if link.linked_to != old.id:
                continue
            if question_key(link.question) in taken:
                self.corrections.remove(link.id)
            else:
                self.corrections.update(link.id, **({"same_as": new.id} if link.same_as else {"not_same_as": new.id}))

    def _link(self, answer, answer_id, question, reason, author, same_as, not_same_as,
              asker: bool = False, active: bool = True) -> Correction:
        """Write a `same_as` or `not_same_as` link of a question; the latest decision on it stands.
        `asker`: a `same_as` link the asker confirmed (`confirm`; `ASKER_REASON`), with a review
        note until a reviewer checks it (disabled unless `active`). An asker's link never
        replaces a reviewer's decision: when a reviewer linked the question, or a correction
        answers it in its words, it goes and ConflictError says so. A reviewer's link replaces
        the askers' links of the question to that correction, and a reviewer's `same_as` link
        those to any correction."""
        if same_as and not_same_as:
            raise RagError("A question is linked same_as or not_same_as a correction, not both.")
        if answer is not None:
            raise RagError("A linked question takes its answer from the correction it is linked to; give no answer.")
        target_id = same_as or not_same_as
        target = self.corrections.get(target_id)
        if target is not None and target.same_as:  # a paraphrase of a paraphrase: link to the correction
            target = self.corrections.get(target.same_as)
        if target is None or target.not_same_as:
            raise NotFoundError(f"No correction {target_id!r} with an answer in the index at {self.index.display_location}.",
                                f"no correction {target_id!r} with an answer")
        if same_as and not target.active:
            raise RagError(f"Correction {target.id} is disabled: enable it first (rag corrections enable {target.id}), "
                           f"or link the question to the correction that replaced it.")
        bad_answer = None
        if answer_id is not None:
            record = self._logged(answer_id)
            question, bad_answer = question or record.question, record.answer
        if not (question or "").strip():
            raise RagError("A linked question needs the question (or the id of a logged answer).")
        question = question.strip()
        if question_key(question) == question_key(target.question):
            raise RagError(f"That is correction {target.id}'s own question: "
                           + ("it already answers it." if same_as else
                              f"to stop it answering, disable it (rag corrections disable {target.id}) or correct it."))
        # The latest decision on a question stands: the other links of it go, either way. A link is
        # stamped after the newest one it finds, whatever this machine's clock says, so a later
        # decision is the newer one. After the write the question's links are read back and all
        # but the newest (by time, then id) removed: whatever the order of two reviewers' writes
        # and removals at the same moment, the last to clean up sees both links, and one stays.
        def newest_of(links: list[Correction]) -> Correction | None:
            return max(links, key=lambda c: (c.created_at, c.id), default=None)

        stamp = now()
        earlier = newest_of(self.linked_questions(target.id, question))
        if earlier is not None and earlier.created_at >= stamp:
            stamp = (datetime.fromisoformat(earlier.created_at) + timedelta(microseconds=1)).isoformat(
                timespec="microseconds")
        link = Correction(
            question=question, answer="", author=author, reason=ASKER_REASON if asker else reason,
            replaces_answer_id=answer_id,
            bad_answer=bad_answer, model=canonical_name(self.config.embedding_model), created_at=stamp,
            same_as=target.id if same_as else None, not_same_as=target.id if not_same_as else None,
            active=active, review=ASKER_REVIEW if asker else None,
        )
        self.corrections.add(link, self.embedder.embed_query(question))
        links = self.linked_questions(target.id, question)
        if asker:
            key = question_key(question)
            decided = [c for c in self.corrections.list(include_inactive=True) if question_key(c.question) == key
                       and not c.unreviewed and (c.linked_to == target.id or c.same_as or not c.linked_to and c.active)]
            if decided:  # a reviewer linked or answered it meanwhile
                self.corrections.remove(link.id)
                raise ConflictError("A reviewer has decided on this question meanwhile; ask it again.")
            links = [old for old in links if old.unreviewed]
        else:
            for old in links:
                if old.unreviewed:  # an asker's word gives way to a reviewer's
                    self.corrections.remove(old.id)
            links = [old for old in links if not old.unreviewed]
        newest = newest_of(links) or link
        for old in links:
            if old.id != newest.id:
                self.corrections.remove(old.id)
        if newest.id != link.id and bool(newest.same_as) != bool(link.same_as):
            raise ConflictError(f"Another reviewer ({newest.author}) linked this question "
                                f"{'same_as' if newest.same_as else 'not_same_as'} correction {target.id} at the same "
                                f"moment; their decision stands. Link it again to change it.")
        if same_as and not asker:
            self._drop_asker_links(question, keep=target.id)  # settled: it asks what the target answers
        # A correction that replaced the target meanwhile moved the target's links before this
        # one was written: move it too.
        now_target = self.corrections.get(target.id)
        if now_target is not None and not now_target.active:
            heir = self._answering(target.question)
            if heir and heir[-1].id != target.id:
                self.corrections.update(newest.id, **({"same_as": heir[-1].id} if newest.same_as
                                                      else {"not_same_as": heir[-1].id}))
                newest = self.corrections.get(newest.id) or newest
        return newest

    def _drop_asker_links(self, question: str, keep: str | None = None) -> None:
        """Remove the links of `question` that askers confirmed and no reviewer has checked (but
        those to correction `keep`, which the caller settles): a reviewer answered it."""
        key = question_key(question)
        for c in self.corrections.list(include_inactive=True):
            if c.unreviewed and c.same_as != keep and question_key(c.question) == key:
                self.corrections.remove(c.id)

    def _answering(self, question: str) -> list[Correction]:
        """The active corrections (not links) of `question` in the same words, oldest first."""
        key = question_key(question)
        return sorted((c for c in self.corrections.list(include_inactive=False)
                       if not c.linked_to and question_key(c.question) == key), key=lambda c: (c.created_at, c.id))

    def linked_questions(self, correction_id: str, question: str) -> list[Correction]:
        """The links (`same_as` or `not_same_as`) of `question` to correction `correction_id`,
        case, punctuation and contractions aside: a reviewer's decision on it, if any."""
        key = question_key(question)
        return [c for c in self.corrections.list(include_inactive=True)
                if c.linked_to == correction_id and question_key(c.question) == key]

    def wrong_answers(self, limit: int = 200, scan: int | None = None) -> list[dict[str, Any]]:
        """Answers marked wrong that wait for a reviewer, newest first, one per question (case,
        punctuation and contractions aside; `reports`: how many thumbs down it has had), of
        the last `scan` thumbs down (default: five per answer asked for, at least 1000).

        A question is settled, and left out, once an active correction with an answer, or a
        reviewer's `same_as` link, was written for it after its newest thumbs down (for that answer, or
        for the same question), or, when the model gave the answer, once a correction answers
        it (as `ask` would now, judge aside). An answer a correction gave stays until a
        reviewer writes the right one (which replaces that correction for the question) or
        links the question `not_same_as` that correction."""
        scan = max(1000, 5 * limit) if scan is None else scan
        stored = self.corrections.list(include_inactive=True)
        written: dict[str, list[Correction]] = {}
        for c in stored:
            if c.active and not c.unreviewed:  # an asker's link settles no one's complaint
                written.setdefault(question_key(c.question), []).append(c)
                if c.replaces_answer_id:
                    written.setdefault(c.replaces_answer_id, []).append(c)

        def settles(c: Correction, f: Feedback) -> bool:
            return c.created_at > f.created_at and (not c.not_same_as or c.not_same_as == f.correction_id)

        groups: dict[str, list[Feedback]] = {}
        for f in reversed(self.corrections.list_feedback(bad_only=True)[-scan:]):  # newest first
            if f.question is not None:  # its answer is still in the log
                groups.setdefault(question_key(f.question), []).append(f)
        unsettled = [(key, reports) for key, reports in groups.items()
                     if not any(settles(c, reports[0])
                                for c in written.get(key, []) + written.get(reports[0].answer_id, []))]
        active = {c.id for c in stored if c.active and c.linked_to is None}
        matcher = self.matcher
        judge = (lambda a, b: False) if self.config.corrections_judge == "llm" else None
        waiting: list[dict[str, Any]] = []
        known: dict[str, np.ndarray] = {}
        embed = embed_once(self.embedder.embed_queries, known)  # the classifier's texts recur across questions
        for start in range(0, len(unsettled), 64):  # embeds only as far as `limit` needs
            batch = [reports for _, reports in unsettled[start:start + 64]]
            asked = [r[0].question for r in batch if r[0].correction_id is None] if active else []
            vectors = dict(zip(asked, self.embedder.embed_queries(asked))) if asked else {}
            known.update(vectors)
            for reports in batch:
                f = reports[0]
                verdicts = (self._weigh(f.question, vectors[f.question], judge, matcher, embed)
                            if f.question in vectors else [])
                if self._answered((v for v in verdicts if not v[0].unreviewed), active):  # not on an asker's word
                    continue
                waiting.append({**dataclasses.asdict(f), "reports": len(reports)})
                if len(waiting) >= limit:
                    return waiting
        return waiting

    @staticmethod
    def _answered(verdicts, active: set[str]) -> bool:
        """Whether the matcher's `verdicts` (from `_weigh`) apply an active correction, as
        `find_correction` would."""
        return any(matched and not candidate.not_same_as and target in active
                   for candidate, target, _, matched, _, _ in verdicts)

    def feedback(self, answer_id: str, good: bool, comment: str | None = None) -> None:
        """Record a thumbs up or down (and a comment) on a logged answer."""
        self._logged(answer_id)
        self.corrections.add_feedback(Feedback(answer_id, bool(good), comment))

    def confirm(self, answer_id: str, correction_id: str, author: str | None = None) -> Answer:
        """The asker of the logged answer `answer_id` says their question asks what correction
        `correction_id` answers: one of the corrections the answer offered them
        (`related_corrections`).
        Returns the correction's answer to their question (logged as a new answer), and links the
        question `same_as` the correction. With `corrections_confirmed = "review"` (the default)
        the link waits for a reviewer, disabled, first in the review queue (`suggest_links`):
        `rag corrections enable` (or a reviewer's own link of the question) applies it. With
        "apply" it applies at once, to that wording. Only a correction the matcher offers for
        the question now can be confirmed, so an asker cannot link a question anywhere else, nor
        undo a reviewer's `not_same_as`; with `corrections_offers = 0` (or corrections off) none can.
        The answer is the correction's, word for word, in `guide` mode too."""
        started = time.perf_counter()
        if not self.config.corrections or self.config.corrections_offers <= 0 or not self.config.log_answers:
            raise ConflictError("This assistant offers no corrections to confirm (corrections_offers = 0).")
        record = self._logged(answer_id)
        if record.correction_id:
            raise ConflictError(f"Answer {answer_id} is already a correction's answer; nothing to confirm.")
        vector = self.embedder.embed_query(record.question)
        match, offered = self._lookup(record.question, vector, offers=self.config.corrections_offers)
        earlier = self.corrections.conversation(record.conversation_id, 1) if record.conversation_id else []
        turn = earlier[-1].turn + 1 if earlier else 0
        if match is not None:  # answered meanwhile (a reviewer linked it, say): that answer, no link
            if match[0].id != correction_id:
                raise ConflictError(f"Correction {match[0].id} answers that question now, not {correction_id}: "
                                    f"ask it again.")
            return self._verbatim(record.question, *match, {}, started, record.conversation_id, turn)
        related = next((r for r in offered if r["id"] == correction_id), None)
        if related is None:
            raise ConflictError(f"Correction {correction_id} is not one offered for that question (any more): "
                                f"ask it again.")
        try:
            link = self._link(None, answer_id, None, ASKER_REASON, author or "asker", correction_id, None, asker=True,
                              active=self.config.corrections_confirmed == "apply")
        except ConflictError:
            raise
        except NotFoundError:  # removed meanwhile (the message for the asker names no path)
            raise ConflictError(f"Correction {correction_id} was disabled or removed meanwhile: ask it again.") from None
        except RagError as exc:  # disabled meanwhile
            raise ConflictError(f"{exc} Ask the question again.") from None
        correction = self.corrections.get(link.same_as)
        if correction is None or not correction.active:
            self.corrections.remove(link.id)
            raise ConflictError(f"Correction {correction_id} was disabled or removed meanwhile: ask it again.")
        answer = self._verbatim(record.question, correction, related["similarity"],
                                "the asker confirmed it", {}, started, record.conversation_id, turn)
        answer.correction = {**(answer.correction or {}), "confirmed_by_asker": True, "link": link.id,
                             "link_pending": link.pending}
        return answer

    def _logged(self, answer_id: str):
        """The logged answer `answer_id`, or a clear error."""
        record = self.corrections.get_answer(answer_id)
        if record is None:
            raise NotFoundError(f"No logged answer with id {answer_id!r} in the index at {self.index.display_location}.",
                                f"no answer with id {answer_id!r}")
        return record

    def status(self) -> dict[str, Any]:
        info = self.index.info()
        manifest = self.index.manifest()
        return {
            "index": self.index.display_location,
            "files": sum(1 for f in manifest.values() if not f.error),
            "failed_files": sum(1 for f in manifest.values() if f.error),
            "chunks": self.index.count(),
            "embedding_model": info.embedding_model if info else None,
            "dimension": info.dimension if info else None,
            "chunking": info.chunking if info else None,
        }

    # -- questions ---------------------------------------------------------------------
    def search(self, question: str, k: int | None = None, where: dict[str, Any] | None = None,
               vector: np.ndarray | None = None) -> list[Hit]:
        """The k chunks closest to the question (no LLM call)."""
        k = _checked(question, k, self.config.top_k)
        index = self.index
        if index.info() is None:
            raise IndexNotFoundError(
                f"No index at {index.display_location}. Build one first: rag ingest PATH --index {index.display_location}"
            )
        index.check_model(canonical_name(self.config.embedding_model), self.embedder.dimension)
        reranker = self.reranker
        if reranker is None:
            return self.retriever.search(question, k, where, vector)
        candidates = self.retriever.search(question, max(k, self.config.rerank_candidates), where, vector)
        return reranker.rerank(question, candidates, k)

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            c = self.config
            settings = RetrievalSettings(c.retrieval_mode, c.retrieval_candidates, c.rrf_k, c.dense_weight,
                                         c.lexical_weight, c.per_source)
            self._retriever = Retriever(self.index, self.embedder, settings)
        return self._retriever

    @property
    def reranker(self) -> Reranker | None:
        if self._reranker is None and self.config.reranker != "none":
            llm = self.llm_for("rerank") if self.config.reranker == "llm" else None
            self._reranker = load_reranker(self.config.reranker, llm, self.config.prompts_dir)
        return self._reranker

    def ask(self, question: str, k: int | None = None, where: dict[str, Any] | None = None,
            history: list[dict[str, str]] | None = None, conversation_id: str | None = None) -> Answer:
        """Answer `question` from the index, with cited sources, usage and latency.

        A follow-up is first rewritten into a standalone question (its own LLM call) from the
        conversation: `history` given here, or the last answers logged under `conversation_id`.
        Retrieval sees only the standalone question, so earlier sources do not leak in."""
        answer = None
        for item in self.stream(question, k, where, history, conversation_id):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(self, question: str, k: int | None = None, where: dict[str, Any] | None = None,
               history: list[dict[str, str]] | None = None,
               conversation_id: str | None = None) -> Iterator[str | Answer]:
        """Yield the answer text as it is generated, then the final `Answer`."""
        _checked(question, k, self.config.top_k)
        started = time.perf_counter()
        latency: dict[str, float] = {}
        turn = 0
        if conversation_id is not None:
            earlier = self.corrections.conversation(conversation_id, self.config.history_turns)
            turn = earlier[-1].turn + 1 if earlier else 0
            if history is None:
                history = [m for r in earlier for m in ({"role": "user", "content": r.question},
                                                         {"role": "assistant", "content": r.answer})]
        asked, standalone = question, True
        if history:
            question, standalone = self._follow_up(question, history)
            latency["rewrite"] = _ms(started)
        embed_started = time.perf_counter()
        vector = self.embedder.embed_query(question)  # once, for the corrections and retrieval
        latency["embed"] = _ms(embed_started)  # the first call of a process also loads the model
        corrections_started = time.perf_counter()
        # offers need the answer log: confirming one names the logged answer
        offers = self.config.corrections_offers if self.config.log_answers else 0
        # corrections answer one question: not several asked together (a follow-up the model did not rewrite)
        lookup = self.config.corrections and standalone
        match, related = self._lookup(question, vector, offers=offers) if lookup else (None, [])
        latency["corrections"] = _ms(corrections_started)
        if match is not None and self.config.corrections_mode == "verbatim":
            answer = self._verbatim(question, *match, latency, started, conversation_id, turn)
            yield answer.text
            yield answer
            return
        retrieve_started = time.perf_counter()
        hits = self.search(question, k, where, vector)
        latency["retrieve"] = _ms(retrieve_started)

        prompt = prompts.load(self.config.prompt, self.config.prompts_dir)
        llm = self.llm
        context_sources = self._fit_context(hits, llm)
        if match is not None:  # guide: the correction is authoritative context, block [1]
            context_sources = [_correction_source(match[0])] + [
                Source(s.n + 1, s.path, s.url, s.title, s.section, s.score, s.text) for s in context_sources
            ]
        messages = prompt.render(context=_context(context_sources), question=neutral(question))
        guard = LeakGuard([m["content"] for m in messages if m["role"] == "system"])

        llm_started = time.perf_counter()
        completion: Completion | None = None
        error: str | None = None
        pieces: list[str] = []
        withheld = False
        options = {}
        grammar = self.config.llm_grammar
        if llm.supports_grammar and (grammar == "citations" or (grammar == "auto" and llm.bundled)):
            options["grammar"] = citation_grammar(len(context_sources))
        generation = llm.stream(messages, max_tokens=self.config.llm_max_tokens,
                                temperature=self.config.llm_temperature, **options)
        sent = 0  # characters of the answer already streamed
        try:
            for item in generation:
                if isinstance(item, Completion):
                    completion = item
                    continue
                pieces.append(item)
                so_far = "".join(pieces)
                if guard.leaks(so_far):  # it is repeating its instructions: stop here
                    withheld = True
                    break
                ready = len(so_far) - guard.held_back(so_far)  # words that may begin such a run wait
                if ready > sent:
                    yield so_far[sent:ready]
                    sent = ready
        except LLMError as exc:
            error = str(exc)
        finally:
            close = getattr(generation, "close", None)
            if close is not None:
                close()  # frees the local model at once when stopped early
        if not withheld and sent < len("".join(pieces)):
            yield "".join(pieces)[sent:]
        latency["llm"] = _ms(llm_started)
        latency["total"] = _ms(started)

        text = completion.text if completion else "".join(pieces)
        if withheld:
            log.warning("an answer was withheld: it repeated the system prompt")
            text, completion = WITHHELD, None
        numbers = cited_numbers(text, len(context_sources))
        attributed: set[int] = set()
        if (not numbers and error is None and not withheld and self.config.citation_attribution
                and not _DO_NOT_KNOW.search(text)):
            # the text stays as generated (streamed text and final text are the same)
            attributed = set(attribute(text, {s.n: s.text for s in context_sources}).support)
        retrieved = [
            Source(s.n, s.path, s.url, s.title, s.section, s.score, s.text, cited=s.n in numbers or s.n in attributed,
                   attributed=s.n in attributed)
            for s in context_sources
        ]
        cited = [s for s in retrieved if s.cited]
        usage = Usage(completion.prompt_tokens, completion.completion_tokens) if completion else Usage()
        yield self._log(Answer(
            id=uuid.uuid4().hex,
            question=question if standalone else asked,  # as asked: the next turn's history holds it
            text=text if error is None else (text or "No answer could be generated; the retrieved sources are listed."),
            sources=cited or retrieved,
            retrieved=retrieved,
            usage=usage,
            cost_usd=cost_usd(self.config.price_model or llm.name, usage.prompt_tokens, usage.completion_tokens,
                              price_table(self.config.prices)),
            latency_ms=latency,
            model=llm.name,
            prompt=prompt.id,
            error=error,
            correction=correction_info(match[0], "guide", match[1]) if match else None,
            related_corrections=related,
            conversation_id=conversation_id,
        ), turn)

    def _verbatim(self, question: str, correction: Correction, similarity: float, why: str,
                  latency: dict[str, float], started: float, conversation_id: str | None = None,
                  turn: int = 0) -> Answer:
        source = _correction_source(correction)
        sources = [source] + [
            Source(i, path, None, None, (), 1.0, "", cited=True) for i, path in enumerate(correction.sources, 2)
        ]
        latency["total"] = _ms(started)
        return self._log(Answer(
            id=uuid.uuid4().hex, question=question, text=correction.answer, sources=sources, retrieved=[],
            latency_ms=latency, model="human-correction", prompt="",
            correction=correction_info(correction, "verbatim", similarity), conversation_id=conversation_id,
        ), turn)

    def _log(self, answer: Answer, turn: int = 0) -> Answer:
        if self.config.log_answers:
            try:
                self.corrections.log_answer(AnswerRecord(
                    answer.id, answer.question, answer.text, [s.to_dict() for s in answer.sources], answer.model,
                    answer.prompt, (answer.correction or {}).get("id"), answer.error,
                    conversation_id=answer.conversation_id, turn=turn,
                ))
            except Exception as exc:  # the answer matters more than its log line
                log.warning("could not log answer %s: %s", answer.id, exc)
        return answer

    def _fit_context(self, hits: list[Hit], llm: ChatModel) -> list[Source]:
        """The hits that fit the context budget, in rank order (at least one)."""
        budget = self.config.context_tokens
        chosen: list[Source] = []
        for hit in hits:
            source = Source.from_hit(len(chosen) + 1, hit)
            cost = llm.count_tokens(_block(source)) + 2
            if chosen and cost > budget:
                break
            budget -= cost
            chosen.append(source)
        return chosen


def source_key(source: str) -> str:
    """A source a correction cites, as `rag ingest` keys the file it names ("./docs/a.md", or
    its absolute path, is "docs/a.md" run from the same directory), so that the correction is
    flagged for review when that file changes; an #anchor is kept, a URL left as given."""
    source = source.strip()
    path, hashmark, anchor = source.partition("#")
    if "://" in source or not path:
        return source
    path = os.path.normpath(path)
    try:
        exists = Path(path).exists()
    except (OSError, ValueError):  # a name too long for this filesystem, a NUL: not a file here
        exists = False
    return (display_path(Path(path)) if exists else path) + hashmark + anchor


def _correction_source(correction: Correction) -> Source:
    title = f"Human correction by {correction.author}, {correction.created_at[:10]}"
    return Source(1, f"correction:{correction.id}", None, title, (title,), 1.0, correction.answer, cited=True)


def _block(source: Source) -> str:
    # No path or URL here: small models copy them into the answer as invented links.
    # Document text is data: neutral() removes what could pass for prompt structure.
    heading = " > ".join(source.section) or source.title or source.path
    return f'Excerpt [{source.n}] from "{neutral(heading)}":\n{neutral(source.text)}'


def _context(sources: list[Source]) -> str:
    return "\n\n".join(_block(s) for s in sources) if sources else "(no excerpts found)"


_ASKING = re.compile(r"(how|what|why|when|where|which|who|whose|whom|is|are|am|was|were|do|does|did|can|could|"
                     r"should|would|will|shall|may|might|must|has|have|had|tell|explain|show|describe|list|give|"
                     r"compare|summari[sz]e|define|walk|help|find)\b", re.IGNORECASE)


def _standalone(rewritten: str, question: str) -> bool:
    """Whether a rewrite of the follow-up `question` reads as a question to ask in its place, not
    as an answer (a small model may answer instead: "You can install it with pip:", "Yes, it
    runs on macOS."): a sensible length, a question mark or a question's or request's first
    word, and no citation such as "[2]" closing a sentence ("arr[0]" in a question is none)."""
    if not 3 <= len(rewritten) <= min(500, len(question) + 150):
        return False
    if re.search(r"\[\d+\](?=\s*[.!?;,]|\s*$)", rewritten):
        return False
    return rewritten.rstrip().endswith(("?", "\uff1f", "\u061f")) or bool(_ASKING.match(rewritten))


def _checked(question: str, k: int | None, default: int) -> int:
    """The number of chunks to retrieve (`default` when None); a blank question or a k below 1 is a mistake."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("The question is empty.")
    if k is None:
        return default
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a whole number of at least 1, not {k!r}.")
    return int(k)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
