"""The `rag` command line: parse, call the library, render."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from rag.errors import RagError

EXIT_ERROR = 1
EXIT_NO_ANSWER = 3
EXIT_FAILED_FILES = 4

EPILOG = f"""\b
Exit status: 0 success; 1 error; 2 bad usage;
{EXIT_NO_ANSWER} `ask` could not generate an answer (sources still printed);
{EXIT_FAILED_FILES} `ingest` finished but some files failed (use --allow-failures for 0).

\b
Settings come from rag.toml (or --config / RAG_CONFIG), then RAG_* environment
variables (RAG_INDEX, RAG_EMBEDDING_MODEL, RAG_LLM_BASE_URL, RAG_LLM_MODEL,
RAG_LLM_API_KEY, ...), then options. See docs/configuration.md.
"""

index_option = click.option(
    "--index", "index", metavar="LOC", default=None,
    help="Index location: a directory (default .rag, or RAG_INDEX) or a postgresql:// URL.",
)
where_option = click.option(
    "--where", "where", multiple=True, metavar="KEY=VALUE",
    help="Only chunks that match: path=GLOB, section=TITLE, or any metadata key (repeatable).",
)


def _where(pairs: tuple[str, ...]) -> dict | None:
    where = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--where {pair!r}: expected KEY=VALUE")
        where[key] = int(value) if value.isdigit() and key not in ("path", "section") else value
    return where or None
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else on stdout.")


def _emit(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _assistant(ctx: click.Context, **overrides: Any):
    from rag.assistant import Assistant
    from rag.config import Config

    config = Config.load(ctx.obj.get("config"), **overrides)
    return Assistant(config)


def _fail(exc: Exception, as_json: bool) -> None:
    if as_json:
        _emit({"error": str(exc)})
    else:
        click.secho(f"Error: {exc}", fg="red", err=True)
    sys.exit(EXIT_ERROR)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", metavar="FILE", default=None, help="TOML config file (default ./rag.toml if present).")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug).")
@click.version_option(package_name="rag")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: int) -> None:
    """rag: ingest documents, then ask questions and get answers with their sources.

    \b
      rag ingest ./docs            parse, chunk and embed into the index (.rag/)
      rag ask "How do I ...?"      answer from the index with the local LLM
      rag search "..."             the closest chunks, no LLM
      rag status                   what the index holds
      rag eval questions.jsonl     retrieval and answer quality, with plots
    """
    ctx.obj = {"config": config}
    if verbose:
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO, stream=sys.stderr,
                            format="%(levelname)s %(name)s: %(message)s")


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
    """Ingest files and folders (.md, .rst, .txt, .html) into the index.

    New and changed files are parsed, chunked and embedded on Ray Data; unchanged files
    cost a hash; files gone from PATH are removed from the index. The commit is atomic.
    Files that cannot be read or parsed are reported and skipped.
    """
    try:
        assistant = _assistant(ctx, index=index, source_url=source_url)
        if not as_json:
            click.echo(f"Ingesting {', '.join(paths)} into {assistant.config.index} ...", err=True)
        report = assistant.ingest(list(paths), progress=not as_json and sys.stderr.isatty())
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(report.to_dict())
    else:
        click.echo(
            f"{report.new} new, {report.changed} changed, {report.unchanged} unchanged, "
            f"{report.removed} removed, {len(report.failed)} failed; "
            f"{report.chunks_written} chunks written in {report.seconds:.1f}s"
        )
        if report.failed:
            click.secho("Not ingested:", fg="yellow", err=True)
            width = max(len(f.path) for f in report.failed)
            for f in report.failed:
                click.echo(f"  {f.path:<{width}}  {f.error}", err=True)
    if report.failed and not allow_failures:
        sys.exit(EXIT_FAILED_FILES)


@cli.command()
@click.argument("question")
@index_option
@click.option("-k", "k", type=int, default=None, help="Chunks to retrieve (default 5).")
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
        if streamed:
            click.echo()
        elif answer.text:
            click.echo(answer.text)
        if answer.error:
            click.secho(f"No answer could be generated: {answer.error}", fg="red", err=True)
        if answer.correction:
            c = answer.correction
            click.secho(f"[human correction {c['id']} by {c['author']}, {c['created_at'][:10]}; "
                        f"similarity {c['similarity']:.2f}]", fg="green")
        heading = "Sources:" if any(s.cited for s in answer.sources) else "Sources (retrieved, not cited):"
        click.echo(f"\n{heading}")
        for s in answer.sources:
            where = " > ".join(s.section) or s.title or ""
            click.echo(f"  [{s.n}] {s.location}" + (f"  ({where})" if where else "") + f"  score {s.score:.2f}")
        lat = answer.latency_ms
        sys.stdout.flush()
        click.secho(
            f"{answer.model} · {answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens · "
            f"retrieve {lat.get('retrieve', 0):.0f} ms, llm {lat.get('llm', 0):.0f} ms · answer id {answer.id}",
            dim=True, err=True,
        )
    if answer.error:
        sys.exit(EXIT_NO_ANSWER)


@cli.command()
@click.argument("question")
@index_option
@click.option("-k", "k", type=int, default=None, help="Chunks to return (default 5).")
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
@click.option("-k", "k", type=int, default=5, show_default=True, help="retrieval_score counts the gold page within the top k.")
@click.option("--no-llm", is_flag=True, help="Evaluate retrieval only; do not generate answers.")
@click.option("--out", "out", type=click.Path(file_okay=False), default="eval-out", show_default=True,
              help="Where results.json, report.md and the PNG plots go.")
@click.option("--sweep", "sweeps", multiple=True, metavar="NAME=V1,V2",
              help="Evaluate every value (repeatable; combinations are crossed). NAME is k or a setting, "
                   "e.g. retrieval_mode=dense,lexical,hybrid or chunk_tokens=128,256 (needs --corpus).")
@click.option("--corpus", type=click.Path(exists=True), default=None, help="Corpus to re-ingest for chunking sweeps.")
@click.option("--source-url", metavar="TEMPLATE", default=None, help="URL template used when re-ingesting --corpus.")
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option("--llm-base-url", default=None, metavar="URL", help="OpenAI-compatible endpoint for the answers.")
@click.option("--llm-model", default=None, metavar="NAME", help="Model name at the endpoint.")
@json_option
@click.pass_context
def eval_command(ctx, dataset, index, k, no_llm, out, sweeps, corpus, source_url, limit, llm_base_url, llm_model, as_json):
    """Evaluate retrieval (and answers) on DATASET, a JSONL file of
    {"question": ..., "source": URL-or-path[#anchor], "reference_answer": optional}.

    Reports retrieval_score (the share of questions whose gold page is among the pages of
    the top-k chunks), hit@1/3/5/10, MRR, the section (anchor) hit rate and latency, and,
    unless --no-llm, answer tokens, cost and latency per query. Writes results.json,
    report.md and PNG plots to --out.
    """
    from pathlib import Path

    from evals.report import write_report
    from evals.retrieval import load_dataset
    from rag.config import Config
    from rag.evaluate import parse_sweeps, run_eval

    if _is_pairs(dataset):
        return _eval_corrections(ctx, dataset, index, out, limit, as_json)
    try:
        items = load_dataset(dataset)[:limit]
        swept = parse_sweeps(list(sweeps))
        base = Config.load(ctx.obj.get("config"), index=index, source_url=source_url, llm_base_url=llm_base_url,
                           llm_model=llm_model)
        say = (lambda m: click.echo(m, err=True)) if not as_json else None
        runs = run_eval(base, items, k, swept, answers=not no_llm, out=Path(out), corpus=corpus, on_progress=say)
        files = write_report(out, runs, swept)
    except (RagError, ValueError) as exc:
        _fail(exc, as_json)
    summaries = [{"params": r["params"], **r["summary"]} for r in runs]
    if as_json:
        _emit(summaries[0] if len(summaries) == 1 else {"runs": summaries})
        return
    click.echo((Path(out) / "report.md").read_text())
    click.echo("Wrote " + ", ".join(str(f) for f in files), err=True)


def _is_pairs(path: str) -> bool:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    return {"a", "b", "match"} <= set(json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    return False
    return False


def _eval_corrections(ctx, dataset, index, out, limit, as_json):
    """rag eval on question pairs: how often the correction matcher overrides."""
    from pathlib import Path

    from rag.corrections import evaluate_matcher, load_pairs

    try:
        assistant = _assistant(ctx, index=index)
        pairs = load_pairs(dataset)[:limit]
        e = assistant.embedder
        judge = assistant._judge if assistant.config.corrections_judge == "llm" else None
        result = evaluate_matcher(assistant.matcher, pairs,
                                  lambda a, b: (e.embed_documents(a) * e.embed_documents(b)).sum(axis=1), judge)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "corrections_results.json").write_text(json.dumps(result, indent=1))
    except (RagError, ValueError) as exc:
        _fail(exc, as_json)
    summary = {k: v for k, v in result.items() if k != "rows"} | {"matcher": assistant.matcher.to_dict()}
    if as_json:
        _emit(summary)
    else:
        click.echo(f"{summary['pairs']} pairs: {summary['paraphrase_recall']:.0%} of paraphrases overridden, "
                   f"{summary['near_miss_override_rate']:.0%} of near misses overridden, "
                   f"override precision {summary['override_precision']:.0%}")


# --- feedback and corrections ---------------------------------------------------------------
@cli.group()
def feedback():
    """Thumbs up or down on answers, by answer id (printed by `rag ask`, in its --json)."""


@feedback.command(name="add")
@click.argument("answer_id")
@click.option("--good/--bad", required=True, help="Was the answer right?")
@click.option("--comment", default=None, help="What was wrong, or right.")
@index_option
@json_option
@click.pass_context
def feedback_add(ctx, answer_id, good, comment, index, as_json):
    """Record feedback on the answer ANSWER_ID."""
    try:
        _assistant(ctx, index=index).feedback(answer_id, good, comment)
    except RagError as exc:
        _fail(exc, as_json)
    _emit({"answer_id": answer_id, "good": good}) if as_json else click.echo("Thanks: feedback recorded.")


@feedback.command(name="list")
@click.option("--bad", "bad_only", is_flag=True, help="Only thumbs down.")
@index_option
@json_option
@click.pass_context
def feedback_list(ctx, bad_only, index, as_json):
    """List feedback, oldest first, with the question and answer it is about."""
    try:
        items = _assistant(ctx, index=index).corrections.list_feedback(bad_only)
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"feedback": [f.__dict__ for f in items]})
        return
    for f in items:
        mark = click.style("good", fg="green") if f.good else click.style("bad", fg="red")
        click.echo(f"{f.created_at}  {mark}  answer {f.answer_id}  {f.question or ''!r}" + (f"  — {f.comment}" if f.comment else ""))
    if not items:
        click.echo("No feedback yet.")


@cli.command()
@click.argument("answer_id", required=False)
@click.option("--answer", "text", required=True, help="The corrected answer.")
@click.option("--question", default=None, help="The question (when not correcting a logged answer by id).")
@click.option("--reason", default=None, help="Why the old answer was wrong.")
@click.option("--author", default=None, help="Who corrects (default: $USER).")
@click.option("--source", "sources", multiple=True, help="A file or URL that backs the correction (repeatable).")
@index_option
@json_option
@click.pass_context
def correct(ctx, answer_id, text, question, reason, author, sources, index, as_json):
    """Correct a bad answer: by its ANSWER_ID, or for --question. The correction then
    answers that question, and the same question asked in other words."""
    import os

    if not answer_id and not question:
        raise click.UsageError("give the ANSWER_ID of a logged answer, or --question")
    try:
        c = _assistant(ctx, index=index).correct(
            text, answer_id=answer_id, question=question, reason=reason,
            author=author or os.environ.get("USER") or "unknown", sources=list(sources) or None,
        )
    except RagError as exc:
        _fail(exc, as_json)
    _emit({"id": c.id}) if as_json else click.echo(f"Correction {c.id} recorded for: {c.question}")


@cli.group()
def corrections():
    """Manage human corrections: list, show, disable, enable, rm, export, import, calibrate."""


@corrections.command(name="list")
@click.option("--all", "include_inactive", is_flag=True, help="Include disabled corrections.")
@index_option
@json_option
@click.pass_context
def corrections_list(ctx, include_inactive, index, as_json):
    """List corrections (active ones by default); [review] marks those whose cited files changed."""
    try:
        items = _assistant(ctx, index=index).corrections.list(include_inactive)
    except RagError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"corrections": [c.to_dict() for c in items]})
        return
    for c in items:
        flags = ("" if c.active else " [disabled]") + (" [review]" if c.review else "")
        click.echo(f"{c.id}  {c.created_at[:10]}  {c.author}{flags}  {c.question}")
    if not items:
        click.echo("No corrections yet.")


def _one(ctx, index, correction_id, as_json):
    store = _assistant(ctx, index=index).corrections
    if store.get(correction_id) is None:
        _fail(RagError(f"No correction {correction_id!r}."), as_json)
    return store


@corrections.command(name="show")
@click.argument("correction_id")
@index_option
@json_option
@click.pass_context
def corrections_show(ctx, correction_id, index, as_json):
    """Show one correction in full."""
    c = _one(ctx, index, correction_id, as_json).get(correction_id)
    if as_json:
        _emit(c.to_dict())
        return
    for key, value in c.to_dict().items():
        click.echo(f"{key:<19} {value}")


@corrections.command(name="disable")
@click.argument("correction_id")
@index_option
@json_option
@click.pass_context
def corrections_disable(ctx, correction_id, index, as_json):
    """Stop a correction from applying (kept for the record)."""
    _one(ctx, index, correction_id, as_json).update(correction_id, active=False)
    _emit({"id": correction_id, "active": False}) if as_json else click.echo(f"Disabled {correction_id}.")


@corrections.command(name="enable")
@click.argument("correction_id")
@index_option
@json_option
@click.pass_context
def corrections_enable(ctx, correction_id, index, as_json):
    """Let a disabled correction apply again, and clear its review flag."""
    _one(ctx, index, correction_id, as_json).update(correction_id, active=True, review=None)
    _emit({"id": correction_id, "active": True}) if as_json else click.echo(f"Enabled {correction_id}.")


@corrections.command(name="rm")
@click.argument("correction_id")
@index_option
@json_option
@click.pass_context
def corrections_rm(ctx, correction_id, index, as_json):
    """Delete a correction for good."""
    _one(ctx, index, correction_id, as_json).remove(correction_id)
    _emit({"id": correction_id, "removed": True}) if as_json else click.echo(f"Removed {correction_id}.")


@corrections.command(name="export")
@click.argument("file", type=click.File("w"), default="-")
@index_option
@click.pass_context
def corrections_export(ctx, file, index):
    """Write every correction as JSONL (to FILE, default stdout)."""
    for c in _assistant(ctx, index=index).corrections.list(True):
        file.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")


@corrections.command(name="import")
@click.argument("file", type=click.File("r"))
@index_option
@json_option
@click.pass_context
def corrections_import(ctx, file, index, as_json):
    """Add corrections from JSONL (as written by export); their questions are embedded again."""
    from indexes.corrections import Correction
    from pipelines.embed import canonical_name

    try:
        assistant = _assistant(ctx, index=index)
        store, added = assistant.corrections, []
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            data = json.loads(line)
            data["model"] = canonical_name(assistant.config.embedding_model)
            c = Correction(**{k: v for k, v in data.items() if k in Correction.__dataclass_fields__})
            if store.get(c.id) is None:
                store.add(c, assistant.embedder.embed_query(c.question))
                added.append(c.id)
    except (RagError, ValueError, TypeError) as exc:
        _fail(exc, as_json)
    _emit({"imported": len(added)}) if as_json else click.echo(f"Imported {len(added)} corrections.")


@corrections.command(name="calibrate")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False))
@click.option("--max-false-rate", type=float, default=0.0, show_default=True,
              help="Share of near misses that may be wrongly overridden.")
@click.option("--out", type=click.Path(file_okay=False), default="calibration", show_default=True)
@click.option("--dry-run", is_flag=True, help="Report only; keep the index's current matcher.")
@index_option
@json_option
@click.pass_context
def corrections_calibrate(ctx, dataset, max_false_rate, out, dry_run, index, as_json):
    """Fit the correction matcher on DATASET: JSONL pairs {"a": q, "b": q2, "match": true}
    (paraphrases) and {"match": false} (near misses). Prints precision and recall per
    cosine threshold, plots them, and sets the index's matcher to the best one."""
    from pathlib import Path

    from rag.corrections import calibrate, load_pairs, plot_calibration

    try:
        assistant = _assistant(ctx, index=index)
        pairs = load_pairs(dataset)
        embedder = assistant.embedder
        result = calibrate(pairs, lambda a, b: (embedder.embed_documents(a) * embedder.embed_documents(b)).sum(axis=1),
                           max_false_rate)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "calibration.json").write_text(json.dumps(result, indent=1))
        plot = plot_calibration(result, Path(out) / "calibration.png")
        if not dry_run:
            assistant.corrections.set_meta("matcher", result["matcher"])
    except (RagError, ValueError) as exc:
        _fail(exc, as_json)
    summary = {k: result[k] for k in ("matcher", "recall", "false_override_rate", "pairs", "cosine_only")}
    if as_json:
        _emit(summary)
        return
    click.echo("cosine threshold  precision  recall  near misses overridden")
    for row in result["cosine_only"]:
        click.echo(f"{row['threshold']:>16.2f}  {row['precision']:>9.2f}  {row['recall']:>6.2f}  {row['false_override_rate']:>22.2f}")
    m = result["matcher"]
    click.echo(f"\nTwo-stage matcher: band {m['band']}..{m['accept']}, classifier p >= {m['p_min']}: "
               f"{result['recall']:.0%} of paraphrases, {result['false_override_rate']:.0%} of near misses"
               + ("" if dry_run else f" (saved to {assistant.config.index})"))
    if plot:
        click.echo(f"Plot: {plot}", err=True)


@cli.command(name="serve-llm")
@click.option("--model", default=None, help="GGUF file (llamacpp; default: the bundled SmolLM2) or a model path/name (vllm).")
@click.option("--engine", type=click.Choice(["llamacpp", "vllm"]), default="llamacpp", show_default=True)
@click.option("--name", "alias", default="smollm2", show_default=True, help="The model name clients ask for.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--n-ctx", default=4096, show_default=True, type=int, help="Context window (llamacpp).")
@click.option("--min-replicas", default=1, show_default=True, type=int, help="Autoscaling floor (vllm).")
@click.option("--max-replicas", default=2, show_default=True, type=int, help="Autoscaling ceiling (vllm).")
def serve_llm(model, engine, alias, host, port, n_ctx, min_replicas, max_replicas):
    """Serve a model behind an OpenAI-compatible API (chat completions, streaming).

    \b
    Then: rag ask "..." --llm-base-url http://HOST:PORT/v1 --llm-model NAME
    """
    from rag import serve_llm as server

    click.echo(f"Serving {model or 'the bundled SmolLM2'} as {alias!r} at http://{host}:{port}/v1 ({engine})", err=True)
    try:
        if engine == "llamacpp":
            server.serve_llamacpp(model, alias, host, port, n_ctx)
        else:
            if not model:
                raise click.UsageError("--engine vllm needs --model (a Hugging Face model directory or name)")
            server.serve_vllm(model, alias, host, port, min_replicas, max_replicas)
    except RagError as exc:
        _fail(exc, False)


@cli.group()
def pg():
    """An embedded PostgreSQL with pgvector for laptops (no install; data in a folder)."""


@pg.command(name="start")
@click.option("--data", default=".rag-pg", show_default=True, type=click.Path(file_okay=False))
def pg_start(data):
    """Start the embedded server (or find it running) and print its URL for --index."""
    from rag import pgserver

    try:
        click.echo(pgserver.start(data))
    except RagError as exc:
        _fail(exc, False)


@pg.command(name="stop")
@click.option("--data", default=".rag-pg", show_default=True, type=click.Path(file_okay=False))
def pg_stop(data):
    """Stop the embedded server that keeps its data in --data."""
    from rag import pgserver

    pgserver.stop(data)
    click.echo("Stopped.", err=True)


def main() -> None:
    cli(prog_name="rag")


if __name__ == "__main__":
    main()
