"""The `rag` group, its shared options and helpers; commands live beside it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

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
    help="Only chunks that match: path=GLOB, section=TITLE, title=, url=, anchor=, or any metadata key (repeatable).",
)


def _where(pairs: tuple[str, ...]) -> dict | None:
    where = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--where {pair!r}: expected KEY=VALUE")
        where[key] = int(value) if value.isdigit() and key not in ("path", "section", "title", "url", "anchor") else value
    return where or None
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else on stdout.")


def nonblank(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A click callback: an argument that must not be empty or blank."""
    if value is not None and not value.strip():
        raise click.BadParameter("is empty")
    return value


def _emit(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _assistant(ctx: click.Context, existing: bool = False, **overrides: Any):
    """The assistant for the command's settings; with `existing`, for a command that only reads,
    a local index location must hold something (a mistyped --index is an error, not an empty store)."""
    from indexes import check_location, is_database
    from rag.assistant import Assistant
    from rag.config import Config
    from rag.errors import RagError

    config = Config.load(ctx.obj.get("config"), **overrides)
    where = config.index
    check_location(where)
    if existing and not is_database(where) and not Path(where).exists():
        raise RagError(f"Nothing at {where}: no index and no corrections. Build one first (rag ingest PATH --index "
                       f"{where}), or give the right --index.")
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


def print_answer(answer, streamed: bool = False) -> None:
    """An answer as `rag ask` prints it (its text already on the screen if `streamed`)."""
    if streamed:
        click.echo()
    elif answer.text:
        click.echo(answer.text)
    if answer.error:
        click.secho(f"No answer could be generated: {answer.error}", fg="red", err=True)
    if answer.correction:
        c = answer.correction
        what = ("the model's answer, guided by human correction" if c["mode"] == "guide"
                else "human correction")
        confirmed = "; you confirmed it asks your question" if c.get("confirmed_by_asker") else ""
        click.secho(f"[{what} {c['id']} by {c['author']}, {c['created_at'][:10]}; "
                    f"similarity {c['similarity']:.2f}{confirmed}]", fg="green")
        if c.get("review"):
            click.secho("[a file this correction cites changed or was removed since; it waits for a reviewer "
                        f"(rag corrections show {c['id']})]", fg="yellow")
    if any(s.attributed for s in answer.sources):
        heading = "Sources (not cited by the model; these hold the words of its sentences):"
    elif any(s.cited for s in answer.sources):
        heading = "Sources:"
    else:
        heading = "Sources (retrieved, not cited):"
    click.echo(f"\n{heading}")
    for s in answer.sources:
        where = " > ".join(s.section) or s.title or ""
        cited = answer.model == "human-correction" or s.location.startswith("correction:")  # not ranked
        score = "" if cited else f"  score {s.score:.2f}"
        click.echo(f"  [{s.n}] {s.location}" + (f"  ({where})" if where else "") + score)
    if answer.related_corrections:
        click.secho("\nA person corrected the answer to a similar question. If one of these is what you asked, "
                    "see their answer with the command under it:", fg="yellow")
        for r in answer.related_corrections:
            click.secho(f"  {r['question']!r} (similarity {r['similarity']:.2f})\n"
                        f"    rag feedback confirm {answer.id} {r['id']}", fg="yellow")
    lat = answer.latency_ms
    sys.stdout.flush()
    click.secho(
        f"{answer.model} · {answer.usage.prompt_tokens}+{answer.usage.completion_tokens} tokens · "
        + ", ".join(f"{stage} {lat[stage]:.0f} ms" for stage in ("embed", "retrieve", "llm", "total") if stage in lat)
        + f" · answer id {answer.id}",
        dim=True, err=True,
    )
