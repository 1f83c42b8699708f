"""The `rag` command line: parse, call the library, render."""

from rag.cli import index_commands, loop_commands, serve_commands  # noqa: F401  (they register commands)
from rag.cli.common import cli


def main() -> None:
    cli(prog_name="rag")


__all__ = ["cli", "main"]
