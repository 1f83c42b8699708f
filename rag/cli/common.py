"""The `rag` group, its shared options and helpers; commands live beside it."""

from __future__ import annotations

import json
import logging
import sys
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


