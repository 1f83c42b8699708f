"""Serving: rag serve-llm, and the embedded PostgreSQL (rag pg)."""

from __future__ import annotations

import click

from rag.cli.common import (
    _assistant,
    _fail,
    cli,
    index_option,
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

    try:
        click.echo(pgserver.stop(data), err=True)
    except RagError as exc:
        _fail(exc, False)




@cli.command()
@index_option
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1; 0.0.0.0 exposes it).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--llm-base-url", default=None, metavar="URL", help="OpenAI-compatible endpoint (RAG_LLM_BASE_URL); default: the local model.")
@click.option("--llm-model", default=None, metavar="NAME", help="Model name at the endpoint (RAG_LLM_MODEL).")
@click.option("--replicas", default=None, type=int, help="Ray Serve replicas (config serve_replicas).")
@click.option("--max-replicas", default=None, type=int, help="Autoscale up to this many (config serve_max_replicas).")
@click.pass_context
def serve(ctx, index, host, port, llm_base_url, llm_model, replicas, max_replicas):
    """Serve the assistant: HTTP API, OpenAI-compatible chat completions and a chat page.

    \b
    Runs on Ray Serve until Ctrl-C or SIGTERM. Open http://HOST:PORT/ for the chat page.
    API: POST /v1/ask, /v1/ask/stream (SSE), /v1/feedback, /v1/chat/completions;
    /v1/corrections with a bearer token (RAG_SERVE_ADMIN_TOKEN). See docs/serve.md.
    """
    import signal

    from rag import serve as server

    try:
        assistant = _assistant(ctx, index=index, serve_host=host, serve_port=port, llm_base_url=llm_base_url,
                               llm_model=llm_model, serve_replicas=replicas, serve_max_replicas=max_replicas)
        config = assistant.config
        status = assistant.status()
        if not status["chunks"]:
            raise RagError(f"The index at {status['index']} is empty or missing. Build it first: "
                           f"rag ingest PATH --index {assistant.index.display_location}")
        click.echo(f"Starting the assistant on {status['chunks']} chunks from {status['index']} ...", err=True)
        # SIGTERM (systemd, docker stop) stops as Ctrl-C does; set once Ray is up, as ray.init replaces it
        server.run(config, blocking=False, on_ray_started=lambda: signal.signal(signal.SIGTERM, _interrupt))
        click.echo(f"Serving at http://{config.serve_host}:{config.serve_port}/ (Ctrl-C to stop)", err=True)
        if config.admin_token:
            click.echo(f"Reviewers' page: http://{config.serve_host}:{config.serve_port}/review (the admin token)",
                       err=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        click.echo("Stopping.", err=True)
        server.shutdown()
    except RagError as exc:
        _fail(exc, False)
    except Exception as exc:  # Ray Serve could not start: a replica that failed, ...
        # Ray's errors carry the remote traceback: its last line says what happened, the logs the rest
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        _fail(RagError(f"The server could not start: {reason}. Ray's logs "
                       "(/tmp/ray/session_latest/logs) have the details."), False)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
