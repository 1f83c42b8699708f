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
    help="Index location: a directory (default .rag, or RAG_INDEX).",
)
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
@json_option
@click.pass_context
def ask(ctx, question, index, k, llm_base_url, llm_model, no_stream, as_json):
    """Answer QUESTION from the index, citing its sources."""
    try:
        assistant = _assistant(ctx, index=index, llm_base_url=llm_base_url, llm_model=llm_model)
        answer = None
        streamed = False
        for item in assistant.stream(question, k):
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
        heading = "Sources:" if any(s.cited for s in answer.sources) else "Sources (retrieved, not cited):"
        click.echo(f"\n{heading}")
        for s in answer.sources:
            where = " > ".join(s.section) or s.title or ""
            click.echo(f"  [{s.n}] {s.location}" + (f"  ({where})" if where else "") + f"  score {s.score:.2f}")
        lat = answer.latency_ms
        sys.stdout.flush()
        click.secho(
            f"{answer.model} · {answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens · "
            f"retrieve {lat.get('retrieve', 0):.0f} ms, llm {lat.get('llm', 0):.0f} ms",
            dim=True, err=True,
        )
    if answer.error:
        sys.exit(EXIT_NO_ANSWER)


@cli.command()
@click.argument("question")
@index_option
@click.option("-k", "k", type=int, default=None, help="Chunks to return (default 5).")
@json_option
@click.pass_context
def search(ctx, question, index, k, as_json):
    """Show the chunks closest to QUESTION (retrieval only, no LLM)."""
    try:
        hits = _assistant(ctx, index=index).search(question, k)
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
@json_option
@click.pass_context
def eval_command(ctx, dataset, index, k, no_llm, out, sweeps, corpus, source_url, limit, as_json):
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

    try:
        items = load_dataset(dataset)[:limit]
        swept = parse_sweeps(list(sweeps))
        base = Config.load(ctx.obj.get("config"), index=index, source_url=source_url)
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


def main() -> None:
    cli(prog_name="rag")


if __name__ == "__main__":
    main()
