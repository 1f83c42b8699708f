"""Commands over the index: ingest, ask, search, status, eval."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from rag.cli.common import (
    EXIT_FAILED_FILES,
    EXIT_NO_ANSWER,
    _assistant,
    _emit,
    _fail,
    _where,
    cli,
    index_option,
    json_option,
    nonblank,
    print_answer,
    where_option,
)
from rag.errors import RagError


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@click.option("--source-url", metavar="TEMPLATE", default=None,
              help="Give chunks URLs: {path} is the file path relative to PATH, without extension; "
                   "a section anchor is appended.")
@click.option("--allow-failures", is_flag=True, help="Exit 0 even when some files could not be ingested.")
@json_option
@click.pass_context
def ingest(ctx, paths, index, source_url, allow_failures, as_json):
    """Ingest files and folders (md, rst, txt, html, pdf, docx, pptx, ipynb) into the index.

    New and changed files are parsed, chunked and embedded on Ray Data; unchanged files
    cost a hash; files gone from PATH are removed from the index. The commit is atomic.
    Files that cannot be read or parsed are reported and skipped.
    """
    try:
        assistant = _assistant(ctx, index=index, source_url=source_url)
        gone = [p for p in paths if not os.path.lexists(p)]
        if gone:  # a file that was indexed is removed; any other missing path is a typo or an unmounted folder
            from pipelines.discover import display_path

            indexed = assistant.index.manifest() if assistant.index.info() is not None else {}
            gone = [p for p in gone if display_path(Path(p)) not in indexed]
        if gone:  # an error, not one failed file that --allow-failures would hide
            raise RagError(f"No such file or folder: {', '.join(gone)}. Nothing was ingested.")
        if not as_json:
            click.echo(f"Ingesting {', '.join(paths)} into {assistant.index.display_location} ...", err=True)
        tty = not as_json and sys.stderr.isatty()

        def show(stage, done, total):
            label = {"discover": "hashed", "write": "parsed, embedded and written"}[stage]
            click.echo(f"\r{label} {done}" + (f"/{total}" if total else "") + " files ", nl=False, err=True)

        report = assistant.ingest(list(paths), on_progress=show if tty else None)
        if tty:
            click.echo(err=True)
    except RagError as exc:
        _fail(exc, as_json)
    except KeyboardInterrupt:  # the commit is atomic: nothing of this run was written
        click.secho("\nInterrupted. An ingest commits once, at its end: unless it had got there, nothing of this "
                    "run was written and the index is as it was. Run it again.", fg="yellow", err=True)
        sys.exit(130)
    if as_json:
        _emit(report.to_dict())
    else:
        click.echo(
            f"{report.new} new, {report.changed} changed, {report.unchanged} unchanged, "
            + (f"{report.rechunked} chunked again, " if report.rechunked else "") +
            f"{report.removed} removed, {len(report.failed)} failed; "
            f"{report.chunks_written} chunks written in {report.seconds:.1f}s"
        )
        if report.settings_changed:
            before, now = report.settings_changed["before"], report.settings_changed["now"]
            moved = ", ".join(f"{k} {before.get(k)}, now {now.get(k)}" for k in sorted(before.keys() | now.keys())
                              if before.get(k) != now.get(k))
            detail = f" (the last ingest's were {moved})" if moved else ""
            click.secho(f"{report.rechunked} unchanged files were made with other settings than this run's{detail}: "
                        "they were chunked and embedded again.", fg="yellow", err=True)
            if report.elsewhere:
                click.secho(f"{report.elsewhere} indexed files outside {', '.join(paths)} were made with other "
                            "settings too; they keep them until their folders are ingested with these.",
                            fg="yellow", err=True)
        if report.no_url:
            click.secho(f"{report.no_url} new files got no URL: the index was given a --source-url template before, "
                        "and this run gave none. Run again with --source-url to give them one.", fg="yellow", err=True)
        if not (report.new or report.changed or report.unchanged or report.removed or report.failed
                or report.rechunked):
            kinds = " ".join(e.lstrip(".") for e in assistant.config.extensions)
            click.secho(f"No files to ingest under {', '.join(paths)}: rag reads {kinds} files "
                        "(the `extensions` setting); others are left alone.", fg="yellow", err=True)
        if report.same_as_indexed:
            new, old = report.same_as_indexed[0]
            click.secho(f"{len(report.same_as_indexed)} new files have the same content as files already in the index "
                        f"under other paths ({new} is {old}): paths are relative to the directory `rag ingest` runs "
                        f"in. If you meant the same files, run `rag ingest` from the directory you used before.",
                        fg="yellow", err=True)
        if report.failed:
            click.secho("Not ingested:", fg="yellow", err=True)
            width = max(len(f.path) for f in report.failed)
            for f in report.failed:
                click.echo(f"  {f.path:<{width}}  {f.error}", err=True)
    if report.failed and not allow_failures:
        sys.exit(EXIT_FAILED_FILES)


@cli.command()
@click.argument("question", callback=nonblank)
@index_option
@click.option("-k", "k", type=click.IntRange(min=1), default=None, help="Chunks to retrieve (default 5).")
@click.option("--llm-base-url", default=None, metavar="URL", help="OpenAI-compatible endpoint (RAG_LLM_BASE_URL); default: the local model.")
@click.option("--llm-model", default=None, metavar="NAME", help="Model name at the endpoint (RAG_LLM_MODEL).")
@click.option("--no-stream", is_flag=True, help="Print the answer when it is complete.")
@where_option
@json_option
@click.pass_context
def ask(ctx, question, index, k, llm_base_url, llm_model, no_stream, where, as_json):
    """Answer QUESTION from the index, citing its sources."""
    try:
        assistant = _assistant(ctx, index=index, llm_base_url=llm_base_url, llm_model=llm_model)
        answer = None
        streamed = False
        for item in assistant.stream(question, k, _where(where)):
            if isinstance(item, str):
                if not as_json and not no_stream:
                    click.echo(item, nl=False)
                    streamed = True
            else:
                answer = item
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(answer.to_dict())
    else:
        print_answer(answer, streamed)
    if answer.error:
        sys.exit(EXIT_NO_ANSWER)


@cli.command()
@click.argument("question", callback=nonblank)
@index_option
@click.option("-k", "k", type=click.IntRange(min=1), default=None, help="Chunks to return (default 5).")
@where_option
@json_option
@click.pass_context
def search(ctx, question, index, k, where, as_json):
    """Show the chunks closest to QUESTION (retrieval only, no LLM)."""
    try:
        hits = _assistant(ctx, index=index).search(question, k, _where(where))
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"hits": [
            {"path": h.chunk.path, "url": h.chunk.url, "title": h.chunk.title,
             "section": list(h.chunk.section), "score": round(h.score, 4), "text": h.chunk.text}
            for h in hits
        ]})
        return
    for i, h in enumerate(hits, 1):
        where = " > ".join(h.chunk.section)
        click.secho(f"[{i}] {h.source}  ({where})  score {h.score:.3f}", bold=True)
        click.echo("    " + h.chunk.text[:400].replace("\n", "\n    ") + ("…" if len(h.chunk.text) > 400 else ""))


@cli.command()
@index_option
@json_option
@click.pass_context
def status(ctx, index, as_json):
    """Show what the index holds and what built it."""
    try:
        data = _assistant(ctx, index=index).status()
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({k: data[k] for k in ("files", "chunks", "embedding_model", "dimension")} | data)
        return
    if data["embedding_model"] is None:
        click.echo(f"No index at {data['index']} yet. Build one with: rag ingest PATH")
        return
    click.echo(f"index            {data['index']}")
    click.echo(f"files            {data['files']}" + (f" ({data['failed_files']} failed)" if data["failed_files"] else ""))
    click.echo(f"chunks           {data['chunks']}")
    click.echo(f"embedding model  {data['embedding_model']} (dimension {data['dimension']})")
    click.echo(f"chunking         {data['chunking']}")


@cli.command(name="eval")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False))
@index_option
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="retrieval_score counts the gold page within the top k.")
@click.option("--no-llm", is_flag=True, help="Evaluate retrieval only; do not generate answers.")
@click.option("--out", "out", type=click.Path(file_okay=False), default="eval-out", show_default=True,
              help="Where results.json, report.md and the PNG plots go.")
@click.option("--sweep", "sweeps", multiple=True, metavar="NAME=V1,V2",
              help="Evaluate every value (repeatable; combinations are crossed). NAME is k or a setting, "
                   "e.g. retrieval_mode=dense,lexical,hybrid or chunk_tokens=128,256 (needs --corpus).")
@click.option("--corpus", type=click.Path(exists=True), default=None, help="Corpus to re-ingest for chunking sweeps.")
@click.option("--source-url", metavar="TEMPLATE", default=None, help="URL template used when re-ingesting --corpus.")
@click.option("--limit", type=int, default=None, help="Only the first N questions (of a file of question pairs: the first N pairs).")
@click.option("--llm-base-url", default=None, metavar="URL", help="OpenAI-compatible endpoint for the answers.")
@click.option("--llm-model", default=None, metavar="NAME", help="Model name at the endpoint.")
@click.option("--judge", default=None, metavar="URL|local",
              help="Score answers with an LLM judge at this OpenAI-compatible endpoint ('local': the bundled "
                   "model, too weak to be useful): quality 1-5 against reference answers, faithfulness to the "
                   "sources, and, with exactly two configurations, pairwise preference.")
@click.option("--judge-model", default=None, metavar="NAME", help="Model name at the judge endpoint.")
@click.option("--min-similarity", type=float, default=None,
              help="On question pairs: where the review queue starts, as `rag corrections suggest "
                   "--min-similarity` (default: the matcher's review floor).")
@click.option("--as-asked/--pairs-only", "as_asked", default=True, show_default=True,
              help="On question pairs: also ask every question with every anchor question a correction in one "
                   "scratch store (as_asked; 10 to 30 ms a question on two cores).")
@json_option
@click.pass_context
def eval_command(ctx, dataset, index, k, no_llm, out, sweeps, corpus, source_url, limit, llm_base_url, llm_model,
                 judge, judge_model, min_similarity, as_asked, as_json):
    """Evaluate retrieval (and answers) on DATASET, a JSONL file of
    {"question": ..., "source": URL-or-path[#anchor], "reference_answer": optional}.
    On labelled question pairs ({"a": q, "b": q2, "match": true|false}, or QQP, PAWS, grouped
    or triplet records: docs/corrections.md, "Pair files"), it evaluates correction matching.

    Reports retrieval_score (the share of questions whose gold page is among the pages of
    the top-k chunks), hit@1/3/5/10, MRR, the section (anchor) hit rate and latency, and,
    unless --no-llm, answer tokens, cost and latency per query. Writes results.json,
    report.md and PNG plots to --out.
    """
    from pathlib import Path

    from evals.report import write_report
    from evals.retrieval import load_dataset
    from rag.config import Config
    from rag.corrections import is_pair_file
    from rag.evaluate import judge_from, parse_sweeps, run_eval

    if is_pair_file(dataset):
        return _eval_corrections(ctx, dataset, index, out, limit, min_similarity, as_asked, as_json)
    if min_similarity is not None:
        _fail(ValueError("--min-similarity is for a file of question pairs (the review queue); "
                         f"{dataset} is a question set"), as_json)
    if not as_asked:
        _fail(ValueError(f"--pairs-only is for a file of question pairs; {dataset} is a question set"), as_json)
    try:
        items = load_dataset(dataset)[:limit]
        swept = parse_sweeps(list(sweeps))
        base = Config.load(ctx.obj.get("config"), index=index, source_url=source_url, llm_base_url=llm_base_url,
                           llm_model=llm_model)
        say = (lambda m: click.echo(m, err=True)) if not as_json else None
        import os

        generate = judge_from(judge, judge_model, os.environ.get("RAG_JUDGE_API_KEY"))
        runs = run_eval(base, items, k, swept, answers=not no_llm, out=Path(out), corpus=corpus, on_progress=say,
                        judge=generate)
        files = write_report(out, runs, swept)
    except (RagError, ValueError) as exc:
        _fail(exc, as_json)
    summaries = [{"params": r["params"], **r["summary"]} for r in runs]
    unknown = runs[0]["summary"]["gold_not_indexed"]
    if unknown:
        examples = ", ".join(runs[0]["summary"]["gold_not_indexed_examples"])
        click.secho(f"{unknown} of the questions' sources name no file or URL in the index (such as {examples}): "
                    "they count as misses. A source is a path as `rag ingest` keys it (relative to the directory it "
                    "ran in) or a chunk's URL (--source-url), with an optional #anchor.", fg="yellow", err=True)
    if as_json:
        _emit(summaries[0] if len(summaries) == 1 else {"runs": summaries})
        return
    click.echo((Path(out) / "report.md").read_text())
    click.echo("Wrote " + ", ".join(str(f) for f in files), err=True)


def _eval_corrections(ctx, dataset, index, out, limit, min_similarity, as_asked, as_json):
    """rag eval on question pairs: how often the correction matcher overrides."""
    from pathlib import Path

    from rag.corrections import evaluate_matcher, load_pairs, pair_similarity
    from rag.evaluate import evaluate_as_asked

    try:
        assistant = _assistant(ctx, index=index)
        pairs = load_pairs(dataset)[:limit]
        if not pairs:
            raise ValueError("--limit 0 leaves no question pairs")
        e = assistant.embedder
        judge = assistant._judge if assistant.config.corrections_judge == "llm" else None
        result = evaluate_matcher(assistant.matcher, pairs, pair_similarity(e), judge, e.embed_queries,
                                  review_floor=min_similarity)
        asked = evaluate_as_asked(assistant, pairs) if as_asked else None
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "corrections_results.json").write_text(json.dumps(result | {"as_asked": asked}, indent=1))
    except (RagError, ValueError) as exc:
        _fail(exc, as_json)
    summary = ({k: v for k, v in result.items() if k != "rows"} | {"matcher": assistant.matcher.to_dict()}
               | {"as_asked": asked and {k: v for k, v in asked.items() if k != "rows"}})
    if as_json:
        _emit(summary)
    else:
        click.echo(f"{summary['pairs']} pairs: {summary['paraphrase_recall']:.0%} of paraphrases overridden, "
                   f"{summary['near_miss_override_rate']:.0%} of near misses overridden, "
                   f"override precision {summary['override_precision']:.0%}; "
                   f"{summary['unrelated_override_rate']:.0%} of {summary['unrelated_pairs']} unrelated pairs overridden")
        click.echo(f"review queue (rag corrections suggest) from similarity {summary['review_floor']}: "
                   f"{summary['missed_paraphrases_suggested']:.0%} of the missed "
                   f"paraphrases, in {summary['suggestions']} suggestions of which "
                   f"{summary['suggestion_precision']:.0%} are paraphrases; confirmed by a reviewer, "
                   f"{summary['reviewed_recall']:.0%} of paraphrases overridden")
        a = summary["as_asked"]
        if a is not None:
            def share(x, spec=".0%"):
                return "n/a" if x is None else format(x, spec)
            click.echo(f"as asked, every anchor question a correction ({a['corrections']}) and {a['questions_asked']} "
                       f"other questions asked: {share(a['paraphrase_recall'])} of paraphrases answered by their own "
                       f"correction ({share(a['paraphrases_given_another_correction'])} by another), "
                       f"{share(a['near_miss_override_rate'], '.1%')} of near misses by any"
                       + (f"; {a['pairs_skipped']} pairs not asked, their question being an anchor"
                          if a["pairs_skipped"] else ""))
            click.echo(f"with askers who confirm the correction they are offered: "
                       f"{share(a['paraphrase_recall_with_askers'])} of paraphrases get their own correction's answer; "
                       f"{share(a['near_misses_offered'])} of near misses are offered a correction (and say no)")


