"""Feedback and corrections commands."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import sys
import textwrap

import click

from rag.cli.common import (
    EXIT_ERROR,
    _assistant,
    _emit,
    _fail,
    cli,
    index_option,
    json_option,
    print_answer,
)
from rag.errors import RagError


def _author(author: str | None) -> str:
    """Who corrects or reviews: --author, else $USER, else the login name of this process."""
    if author and author.strip():
        return author.strip()
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no such user in this container's passwd
        return "unknown"


# --- feedback and corrections ---------------------------------------------------------------
@cli.group()
def feedback():
    """Thumbs up or down on answers, by answer id (printed by `rag ask`, in its --json)."""


@feedback.command(name="add")
@click.argument("answer_id")
@click.option("--good", is_flag=True, help="The answer was right.")
@click.option("--bad", is_flag=True, help="The answer was wrong.")
@click.option("--comment", default=None, help="What was wrong, or right.")
@index_option
@json_option
@click.pass_context
def feedback_add(ctx, answer_id, good, bad, comment, index, as_json):
    """Record feedback on the answer ANSWER_ID: --good or --bad."""
    if good == bad:
        raise click.UsageError("say whether the answer was right: --good or --bad (one of them)")
    try:
        _assistant(ctx, index=index).feedback(answer_id, good, comment)
    except RagError as exc:
        _fail(exc, as_json)
    _emit({"answer_id": answer_id, "good": good}) if as_json else click.echo("Thanks: feedback recorded.")


@feedback.command(name="confirm")
@click.argument("answer_id")
@click.argument("correction_id")
@click.option("--author", default=None, help="Who confirms (default: $USER).")
@index_option
@json_option
@click.pass_context
def feedback_confirm(ctx, answer_id, correction_id, author, index, as_json):
    """Say that the question of answer ANSWER_ID asks what correction CORRECTION_ID answers
    (one of those `rag ask` named under the answer), and see that correction's answer. The
    question is linked to it: waiting for a reviewer (corrections_confirmed = "review", the
    default: first in `rag corrections review`), or at once ("apply")."""
    try:
        assistant = _assistant(ctx, existing=True, index=index)
        answer = assistant.confirm(answer_id, correction_id, _author(author))
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(answer.to_dict())
        return
    print_answer(answer)
    c = answer.correction or {}
    if c.get("link_pending"):
        click.echo("Recorded: a reviewer will look at it; once they agree, this question gets this answer for everyone.")
    elif c.get("link"):
        click.echo("Recorded: this question now gets this answer for everyone.")


@feedback.command(name="list")
@click.option("--bad", "bad_only", is_flag=True, help="Only thumbs down.")
@click.option("--open", "open_only", is_flag=True,
              help="Only answers marked wrong that wait for a reviewer (of all thumbs down): newest first, one per "
                   "question, none that a correction or link written since settles, nor one a correction answers now.")
@index_option
@json_option
@click.pass_context
def feedback_list(ctx, bad_only, open_only, index, as_json):
    """List feedback, oldest first, with the question and answer it is about, and the
    correction that answered, if one did (when it answered another question: `rag correct
    ANSWER_ID --not-same-as CORRECTION_ID`)."""
    try:
        assistant = _assistant(ctx, existing=True, index=index)
        if open_only:
            items = assistant.wrong_answers(limit=1_000_000)
        else:
            items = [f.__dict__ for f in assistant.corrections.list_feedback(bad_only)]
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"feedback": items})
        return
    for f in items:
        mark = click.style("good", fg="green") if f["good"] else click.style("bad", fg="red")
        applied = f"  [answered by correction {f['correction_id']}]" if f["correction_id"] else ""
        reports = f" ({f['reports']} reports)" if f.get("reports", 1) > 1 else ""
        click.echo(f"{f['created_at']}  {mark}  answer {f['answer_id']}  {f['question'] or ''!r}{reports}{applied}"
                   + (f"  — {f['comment']}" if f["comment"] else ""))
    if not items:
        click.echo("No answer waits for a reviewer." if open_only else "No feedback yet.")


@cli.command()
@click.argument("answer_id", required=False)
@click.option("--answer", "text", default=None, help="The corrected answer.")
@click.option("--same-as", default=None, metavar="CORRECTION_ID",
              help="Instead of an answer: the question asks what that correction answers (a paraphrase it missed).")
@click.option("--not-same-as", default=None, metavar="CORRECTION_ID",
              help="Instead of an answer: the question asks something else; that correction must not apply to it.")
@click.option("--question", default=None, help="The question (when not correcting a logged answer by id).")
@click.option("--reason", default=None, help="Why the old answer was wrong.")
@click.option("--author", default=None, help="Who corrects (default: $USER).")
@click.option("--source", "sources", multiple=True, help="A file or URL that backs the correction (repeatable).")
@index_option
@json_option
@click.pass_context
def correct(ctx, answer_id, text, same_as, not_same_as, question, reason, author, sources, index, as_json):
    """Correct a bad answer: by its ANSWER_ID, or for --question. The correction then
    answers that question, and the same question asked in other words.

    When a correction missed a paraphrase, link the question to it with --same-as ID; when
    it was applied to a question it does not answer, with --not-same-as ID. --same-as holds
    for that question in its own words (case, punctuation and word forms aside; with an LLM
    judge, for what the judge takes for the same question), --not-same-as also for what the
    matcher takes for its rewordings; `rag corrections pairs` exports the links for calibration.

    Correcting an answer that another correction gave replaces that one for the question: in
    the same words it is disabled, in other words the question is linked --not-same-as it. A
    correction of a question that another answers in the same words replaces that one too."""
    if question is not None and not question.strip():
        raise click.UsageError("--question is empty")
    if not answer_id and not question:
        raise click.UsageError("give the ANSWER_ID of a logged answer, or --question")
    if sum(x is not None for x in (text, same_as, not_same_as)) != 1:
        raise click.UsageError("give one of --answer, --same-as or --not-same-as")
    try:
        assistant = _assistant(ctx, index=index)
        answering = {c.id for c in assistant.corrections.list(include_inactive=False) if not c.linked_to}
        c = assistant.correct(
            text, answer_id=answer_id, question=question, reason=reason,
            author=_author(author), sources=list(sources) or None,
            same_as=same_as, not_same_as=not_same_as,
        )
        replaced = answering - {x.id for x in assistant.corrections.list(include_inactive=False)}
    except RagError as exc:
        _fail(exc, as_json)
    try:  # written: what follows only informs
        overlaps = assistant.overlaps_of(c)
    except Exception as exc:  # noqa: BLE001
        click.echo(f"  Note: could not check for corrections that answer the same question ({exc}).", err=True)
        overlaps = None
    if as_json:  # the notes go to standard error, as in text
        _emit({"id": c.id, "overlaps": None if overlaps is None else [o["b"] for o in overlaps],
               "replaced": sorted(replaced), "unindexed_sources": _warn_unindexed(assistant, c.sources)})
    elif c.linked_to:
        relation = "the same question as" if c.same_as else "not the same question as"
        click.echo(f"Linked {c.id}: {c.question!r} is {relation} correction {c.linked_to}")
    else:
        click.echo(f"Correction {c.id} recorded for: {c.question}")
        if replaced:
            click.echo(f"  It replaces {', '.join(sorted(replaced))} (disabled), which answered the same question.")
        if c.sources and not sources:
            click.echo(f"  It cites what the answer it corrects cited: {', '.join(c.sources)} (flagged for review "
                       f"when they change; name others with --source).")
        _warn_unindexed(assistant, c.sources)
        for o in overlaps or []:
            click.echo(f"  Note: correction {o['b']} ({o['b_question']!r}) answers what the matcher takes for the "
                       f"same question, differently: {_overlap_effect(assistant)} Keep one (rag corrections disable "
                       f"{o['b']}, or {c.id}), or make the answers agree.", err=True)


def _overlap_effect(assistant) -> str:
    if assistant.config.corrections_judge == "none" and assistant.config.corrections_margin > 0:
        return "a question between the two gets neither (corrections_margin)."
    return "which of the two a question between them gets is a guess."


def _warn_unindexed(assistant, sources: list[str]) -> list[str]:
    """Sources that name no file in the index, said on standard error and returned: the
    correction is not flagged when they change."""
    try:
        known = set(assistant.index.manifest())
    except RagError:
        return []
    missing = [s for s in sources if "://" not in s and s.split("#", 1)[0] not in known]
    if missing:
        click.echo(f"  Note: {', '.join(missing)} is not a file in the index (paths are relative to the directory "
                   f"`rag ingest` ran in): the correction is not flagged for review when it changes.", err=True)
    return missing


@cli.group()
def corrections():
    """Manage human corrections: list, show, disable, enable, rm, export, import, suggest, review, overlaps, pairs, calibrate."""


@corrections.command(name="list")
@click.option("--all", "include_inactive", is_flag=True, help="Include disabled corrections.")
@index_option
@json_option
@click.pass_context
def corrections_list(ctx, include_inactive, index, as_json):
    """List corrections (active ones by default); [review] marks those whose cited files changed,
    and [confirmed by the asker ...] the links askers confirmed that no reviewer has checked."""
    try:
        items = _assistant(ctx, existing=True, index=index).corrections.list(include_inactive)
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"corrections": [c.to_dict() for c in items]})
        return
    for c in items:
        flags = (" [confirmed by the asker, waiting for a reviewer]" if c.pending else
                 " [confirmed by the asker, applies, not yet checked]" if c.unreviewed else
                 ("" if c.active else " [disabled]") + (" [review]" if c.review else ""))
        flags += f" [same as {c.same_as}]" if c.same_as else (f" [not same as {c.not_same_as}]" if c.not_same_as else "")
        click.echo(f"{c.id}  {c.created_at[:10]}  {c.author}{flags}  {c.question}")
    if not items:
        click.echo("No corrections yet.")


def _by_id(name: str):
    """A `rag corrections NAME CORRECTION_ID [--index] [--json]` command."""
    def decorate(fn):
        for option in (click.pass_context, json_option, index_option, click.argument("correction_id")):
            fn = option(fn)
        return corrections.command(name=name)(fn)
    return decorate


def _one(ctx, index, correction_id, as_json):
    try:
        store = _assistant(ctx, existing=True, index=index).corrections
        found = store.get(correction_id)
    except RagError as exc:
        _fail(exc, as_json)
    if found is None:
        _fail(RagError(f"No correction {correction_id!r}."), as_json)
    return store


@_by_id("show")
def corrections_show(ctx, correction_id, index, as_json):
    """Show one correction in full."""
    c = _one(ctx, index, correction_id, as_json).get(correction_id)
    if as_json:
        _emit(c.to_dict())
        return
    for key, value in c.to_dict().items():
        click.echo(f"{key:<19} {value}")


@_by_id("disable")
def corrections_disable(ctx, correction_id, index, as_json):
    """Stop a correction from applying (kept for the record)."""
    _one(ctx, index, correction_id, as_json).update(correction_id, active=False)
    _emit({"id": correction_id, "active": False}) if as_json else click.echo(f"Disabled {correction_id}.")


@_by_id("enable")
def corrections_enable(ctx, correction_id, index, as_json):
    """Let a disabled correction apply again, and clear its review flag."""
    _one(ctx, index, correction_id, as_json).update(correction_id, active=True, review=None)
    _emit({"id": correction_id, "active": True}) if as_json else click.echo(f"Enabled {correction_id}.")


@_by_id("rm")
def corrections_rm(ctx, correction_id, index, as_json):
    """Delete a correction for good, with the questions linked to it."""
    _one(ctx, index, correction_id, as_json).remove(correction_id)
    _emit({"id": correction_id, "removed": True}) if as_json else click.echo(f"Removed {correction_id}.")


@corrections.command(name="export")
@click.argument("file", type=click.File("w"), default="-")
@index_option
@click.pass_context
def corrections_export(ctx, file, index):
    """Write every correction as JSONL (to FILE, default stdout): the corrections, then the
    questions linked to them, each oldest first."""
    try:
        stored = _assistant(ctx, existing=True, index=index).corrections.list(True)
        for c in sorted(stored, key=lambda c: c.linked_to is not None):  # stable: oldest first within each
            file.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
    except RagError as exc:
        _fail(exc, False)


def _queue_options(command):
    """The options `rag corrections suggest` and `review` share: which part of the queue."""
    for option in reversed([
        click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
                     help="At most this many questions."),
        click.option("--scan", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="How many of the latest answers to look at."),
        click.option("--min-similarity", type=float, default=None,
                     help="Lowest similarity to a correction's question (default: the matcher's review floor: "
                          "the cosine at or above which 90% of its calibration paraphrases are, at most 0.1 "
                          "below its band)."),
    ]):
        command = option(command)
    return command


NO_SUGGESTIONS = "No suggestions: no logged question came close to a correction without getting it."


def _describe(s: dict) -> tuple[str, str]:
    """A suggestion in two lines: the logged question, and the correction it may ask for."""
    mark = click.style("  [thumbs down]", fg="red") if s["bad_feedback"] else ""
    if s.get("confirmed_by_asker"):
        mark = click.style("  [the asker said yes]", fg="yellow") + mark
    asked = f" (asked {s['times_asked']} times)" if s["times_asked"] > 1 else ""
    via = (f", through its linked question {s['nearest_question']!r}"
           if s["nearest_question"] != s["correction_question"] else "")
    return (f"{s['question']!r}{asked}{mark}",
            f"may ask what correction {s['correction_id']} answers: {s['correction_question']!r} "
            f"(similarity {s['similarity']:.2f}, classifier {s['probability']:.2f}{via})")


@corrections.command(name="overlaps")
@index_option
@json_option
@click.pass_context
def corrections_overlaps(ctx, index, as_json):
    """Pairs of active corrections that answer what the matcher takes for the same question,
    with different answers. A question between them gets neither where the classifier decides
    (corrections_margin): keep one (`rag corrections disable ID`), or make the answers agree."""
    try:
        assistant = _assistant(ctx, existing=True, index=index)
        items = assistant.overlapping_corrections()
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"overlaps": items})
        return
    for o in items:
        click.echo(f"{o['a']}  {o['a_question']}")
        click.echo(f"{o['b']}  {o['b_question']}")
        click.echo(f"    the same question to the matcher ({o['why']}), answered differently: "
                   f"rag corrections disable {o['b']}    (or {o['a']})")
    if items:
        click.echo(f"For each pair: {_overlap_effect(assistant)}")
    if not items:
        click.echo("No two active corrections answer the same question differently.")


@corrections.command(name="suggest")
@_queue_options
@index_option
@json_option
@click.pass_context
def corrections_suggest(ctx, limit, scan, min_similarity, index, as_json):
    """Questions a correction probably answers that it was not applied to (close to its
    question, but turned down), thumbs down first, then the likeliest. Confirm one with `rag
    correct ANSWER_ID --same-as CORRECTION_ID`, or rule it out with --not-same-as (or go
    through them with `rag corrections review`); either way it is not suggested again."""
    try:
        items = _assistant(ctx, existing=True, index=index).suggest_links(limit=limit, scan=scan, min_similarity=min_similarity)
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"suggestions": items})
        return
    for s in items:
        question, correction = _describe(s)
        click.echo(f"{s['created_at'][:16]}  {question}")
        click.echo(f"    {correction}")
        which = s["answer_id"] or f"--question {shlex.quote(s['question'])}"  # no logged answer here: by its words
        click.echo(f"    rag correct {which} --same-as {s['correction_id']}    (or --not-same-as)")
    if not items:
        click.echo(NO_SUGGESTIONS)


@corrections.command(name="review")
@_queue_options
@click.option("--author", default=None, help="Who reviews (default: $USER).")
@index_option
@click.pass_context
def corrections_review(ctx, limit, scan, min_similarity, author, index):
    """Go through the review queue (`rag corrections suggest`) one question at a time: y
    links it to the correction as the same question (as `rag correct ANSWER_ID --same-as`),
    n as another question (`--not-same-as`), s skips it, q stops. Each link is saved as it
    is made. A question settled meanwhile (linked by someone else, or now answered by a
    correction through an earlier link) is passed over. Exits 1 if the input ends, or a
    link fails, before the queue does."""
    try:
        assistant = _assistant(ctx, existing=True, index=index)
        items = assistant.suggest_links(limit=limit, scan=scan, min_similarity=min_similarity)
    except RagError as exc:
        _fail(exc, False)
    if not items:
        click.echo(NO_SUGGESTIONS)
        return
    counts = {"same as": 0, "not same as": 0, "skipped": 0, "settled meanwhile": 0, "failed": 0}
    left = 0
    for n, s in enumerate(items, 1):
        correction = assistant.corrections.get(s["correction_id"])
        asker_link = assistant.corrections.get(s["asker_link"]) if s["asker_link"] else None
        if (correction is None or not correction.active
                or any(not link.unreviewed for link in assistant.linked_questions(correction.id, s["question"]))
                or (asker_link is None or not asker_link.unreviewed if s["asker_link"]
                    else assistant.find_correction(s["question"]))):
            counts["settled meanwhile"] += 1
            continue
        question, about = _describe(s)
        click.echo(f"\n[{n}/{len(items)}] {question}")
        click.echo(f"  {about}")
        click.echo(f"  answers: {textwrap.shorten(correction.answer, 200)}")
        try:
            choice = click.prompt("  The same question? [y]es, [n]o, [s]kip, [q]uit",
                                  type=click.Choice(["y", "n", "s", "q"], case_sensitive=False), show_choices=False)
        except click.Abort:  # the end of the input, or Ctrl-C
            left = len(items) - n + 1
            break
        choice = choice.lower()
        if choice == "q":
            break
        if choice == "s":
            counts["skipped"] += 1
            continue
        link = {"same_as": s["correction_id"]} if choice == "y" else {"not_same_as": s["correction_id"]}
        try:
            by = {"answer_id": s["answer_id"]} if s["answer_id"] else {"question": s["question"]}
            assistant.correct(author=_author(author), **by, **link)
            counts["same as" if choice == "y" else "not same as"] += 1
        except RagError as exc:
            click.secho(f"  Not linked: {exc}", fg="red", err=True)
            counts["failed"] += 1
    click.echo(f"\nLinked {counts['same as']} same as, {counts['not same as']} not same as; skipped "
               f"{counts['skipped']}" + "".join(f"; {counts[k]} {k}" for k in ("settled meanwhile", "failed") if counts[k])
               + (f"; the input ended with {left} left" if left else "") + ".")
    if counts["not same as"]:
        click.echo("A question turned down comes back for the next nearest correction it may ask for, if any: "
                   "run `rag corrections review` again.")
    if left or counts["failed"]:
        sys.exit(EXIT_ERROR)


@corrections.command(name="pairs")
@click.argument("file", type=click.File("w"), default="-")
@index_option
@click.pass_context
def corrections_pairs(ctx, file, index):
    """Write the questions people linked to corrections as calibration pairs (JSONL, to FILE,
    default stdout): --same-as links are paraphrases, --not-same-as links near misses. Add
    them to a calibration set and run `rag corrections calibrate` on it."""
    from rag.corrections import link_pairs

    for pair in link_pairs(_assistant(ctx, existing=True, index=index).corrections):
        file.write(json.dumps(pair, ensure_ascii=False) + "\n")


@corrections.command(name="import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@index_option
@json_option
@click.pass_context
def corrections_import(ctx, file, index, as_json):
    """Add corrections from JSONL (as written by export); their questions are embedded again.
    What is already there (the same id, or for a line without one the same question, answer
    and link) is skipped, so an import can run again; so is an asker's link of a question a
    reviewer has linked since. Linked questions are added after the
    corrections; one whose correction is neither in the index nor in FILE is skipped. A line
    that is not a correction stops the import, with its number; the corrections before it
    are in."""
    from pipelines.embed import canonical_name
    from rag.corrections import correction_from_export, question_key

    def same(c) -> tuple:
        return question_key(c.question), c.answer, c.same_as, c.not_same_as

    def add(c, has_id: bool) -> None:
        nonlocal present
        if (not has_id and same(c) in stored) or not store.add_if_absent(c, assistant.embedder.embed_query(c.question)):
            present += 1
        else:
            stored.add(same(c))
            added.append(c.id)

    try:
        assistant = _assistant(ctx, index=index)
        store, added, skipped, present, links = assistant.corrections, [], [], 0, []
        model = canonical_name(assistant.config.embedding_model)
        stored = {same(c) for c in store.list(include_inactive=True)}
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                c = correction_from_export(data, model)
            except ValueError as exc:
                done = (f"; the {len(added)} corrections before it are imported (run the import again once it is "
                        f"fixed: what is there is skipped)" if added else "")
                raise ValueError(f"line {number}: {exc}{done}") from None
            if c.linked_to:  # after the corrections: a file may list a link before its correction
                links.append((c, "id" in data))
                continue
            add(c, "id" in data)
        # a reviewer's link of a question settles it: an asker's link of it, exported before, stays out
        decided = {(question_key(x.question), x.linked_to) for x in store.list(include_inactive=True)
                   if x.linked_to and not x.unreviewed}
        for c, has_id in links:
            target = store.get(c.linked_to)
            if target is None or target.linked_to:
                skipped.append(c.id)
            elif c.unreviewed and (question_key(c.question), c.linked_to) in decided:
                present += 1
            else:
                add(c, has_id)
        empty = assistant.index.info() is None
    except UnicodeDecodeError as exc:
        done = (f"; the {len(added)} corrections before it are imported, not the linked questions (run the import "
                "again once it is fixed: what is there is skipped)" if added else "")
        _fail(RagError(f"{file.name} is not UTF-8 text (invalid byte 0x{exc.object[exc.start]:02x}); "
                       f"convert it to UTF-8{done}"), as_json)
    except (RagError, ValueError, TypeError) as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"imported": len(added), "already_there": present, **({"skipped_links": skipped} if skipped else {})})
        return
    click.echo(f"Imported {len(added)} correction{'' if len(added) == 1 else 's'}"
               + (f"; {present} already there or settled" if present else "") + ".")
    if skipped:
        click.echo(f"Skipped {len(skipped)} linked questions whose correction is missing: {', '.join(skipped)}", err=True)
    if empty:
        where = assistant.index.display_location
        click.echo(f"Note: no documents are ingested at {where} yet; the corrections wait there for them "
                   f"(rag ingest PATH --index {where}).", err=True)


@corrections.command(name="calibrate")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False))
@click.option("--max-false-rate", type=float, default=0.02, show_default=True,
              help="Share of the calibration near misses that may be wrongly overridden (the default "
                   "matcher was fit with 0.02 and overrides 0 to 2.6% of the held-out near misses).")
@click.option("--max-unrelated-rate", type=float, default=0.01, show_default=True,
              help="Share of unrelated pairs (the dataset's questions crossed between pairs) that may be overridden.")
@click.option("--out", type=click.Path(file_okay=False), default="calibration", show_default=True)
@click.option("--dry-run", is_flag=True, help="Report only; keep the index's current matcher.")
@click.option("--with-links", is_flag=True,
              help="Add the questions reviewers linked in this index (as `rag corrections pairs` writes them).")
@index_option
@json_option
@click.pass_context
def corrections_calibrate(ctx, dataset, max_false_rate, max_unrelated_rate, out, dry_run, with_links, index, as_json):
    """Fit the correction matcher on DATASET: JSONL pairs {"a": q, "b": q2, "match": true}
    (paraphrases) and {"match": false} (near misses), or QQP, PAWS, grouped or triplet records
    (docs/corrections.md, "Pair files"), and with --with-links the index's own linked
    questions. Prints precision and recall per cosine threshold, plots them, and sets
    the index's matcher to the best one."""
    from pathlib import Path

    from rag.corrections import Matcher, calibrate, link_pairs, load_pairs, pair_similarity, plot_calibration

    try:
        assistant = _assistant(ctx, index=index)
        links = link_pairs(assistant.corrections) if with_links else []
        pairs = load_pairs(dataset) + links
        embedder = assistant.embedder
        result = calibrate(pairs, pair_similarity(embedder), max_false_rate, embed=embedder.embed_queries,
                           max_unrelated_rate=max_unrelated_rate)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "calibration.json").write_text(json.dumps(result, indent=1))
        plot = plot_calibration(result, Path(out) / "calibration.png")
        if not dry_run:
            assistant.corrections.set_meta("matcher", result["matcher"])
    except (RagError, ValueError) as exc:
        _fail(exc, as_json)
    summary = {k: result[k] for k in ("matcher", "recall", "false_override_rate", "pairs", "unrelated_pairs",
                                      "unrelated_override_rate", "cosine_only")} | {"links": len(links)}
    if as_json:
        _emit(summary)
        return
    click.echo("cosine threshold  precision  recall  near misses overridden")
    for row in result["cosine_only"]:
        click.echo(f"{row['threshold']:>16.2f}  {row['precision']:>9.2f}  {row['recall']:>6.2f}  {row['false_override_rate']:>22.2f}")
    m = result["matcher"]
    click.echo(f"\nTwo-stage matcher: band {m['band']}..{m['accept']}, classifier p >= {m['p_min']}: "
               f"{result['recall']:.0%} of paraphrases, {result['false_override_rate']:.0%} of near misses, "
               f"{result['unrelated_override_rate']:.0%} of {result['unrelated_pairs']} unrelated pairs overridden"
               + (f", with {len(links)} linked questions" if with_links else "")
               + ("" if dry_run else f" (saved to {assistant.index.display_location})"))
    held = [s for s, match in zip(result["similarities"], result["labels"]) if match]
    saved = Matcher.from_dict(m)
    for what, floor in (("Review queue (rag corrections suggest)", saved.review_floor),
                        ("Offers to the asker (related_corrections)", saved.offer_floor)):
        click.echo(f"{what} from similarity {floor}: "
                   f"{sum(s >= floor for s in held) / max(len(held), 1):.0%} of the paraphrases are at or above it")
    if saved.offer_related_min is not None:
        click.echo(f"Offers need the second classifier's {saved.offer_related_min} (overrides and the queue: "
                   f"{saved.related_min}) to take a question for one about the same thing")
    if plot:
        click.echo(f"Plot: {plot}", err=True)


