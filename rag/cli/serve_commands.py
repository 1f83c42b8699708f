"""Serving: rag serve-llm, and the embedded PostgreSQL (rag pg)."""

from __future__ import annotations

import click

from rag.cli.common import (
    _fail,
    cli,
)
from rag.errors import RagError


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


