"""The `rag` command line: parse, call the library, render."""

import sys

import click

from indexes.errors import RagError
from rag.cli import index_commands, loop_commands, serve_commands  # noqa: F401  (they register commands)
from rag.cli.common import EXIT_ERROR, cli


def main() -> None:
    try:
        cli(prog_name="rag")
    except RagError as exc:  # the commands report their own; this is the net under them, not a traceback
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(EXIT_ERROR)


__all__ = ["cli", "main"]
