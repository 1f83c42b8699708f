"""PostgreSQL + pgvector backend: chunks, vectors, full-text search and the file manifest
in one database, shared by many readers, written in transactions.

Location: a libpq URL, optionally with `collection=NAME` (default `default`) to keep
several indexes in one database; each collection is its own schema `rag_NAME`.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import numpy as np

from indexes.base import CHUNK_FIELDS, IndexWriter, VectorIndex, mask_password, matches
from indexes.errors import ConfigError, IndexLockedError, IndexWriteError, PermissionDeniedError, RagError, require
from indexes.faiss_index import STOPWORDS
from indexes.types import Chunk, FileRecord, Hit, IndexInfo

log = logging.getLogger(__name__)

# Numbered migrations, each run once per schema inside one transaction.
MIGRATIONS = [
    [
        "CREATE TABLE {s}.meta (key text PRIMARY KEY, value jsonb NOT NULL)",
        """CREATE TABLE {s}.files (
            path text PRIMARY KEY,
            hash text NOT NULL,
            chunks integer NOT NULL,
            error text,
            ingested_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE {s}.chunks (
            id bigserial PRIMARY KEY,
            path text NOT NULL,
            position integer NOT NULL,
            text text NOT NULL,
            title text,
            section jsonb NOT NULL,
            anchor text,
            url text,
            metadata jsonb NOT NULL,
            embedding vector NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', coalesce(title, '') || ' ' || section::text), 'A')
                || to_tsvector('english', text)
            ) STORED
        )""",
        "CREATE INDEX ON {s}.chunks (path)",
        "CREATE INDEX ON {s}.chunks USING gin (tsv)",
    ],
]

POOL_WAIT_S = 10.0
CONNECT_TIMEOUT_S = 5

_COLUMNS = "id, path, position, text, title, section, anchor, url, metadata"


def split_location(location: str) -> tuple[str, str]:
    """(conninfo without `collection`, schema name) for a postgresql:// location."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    collection = next((v for k, v in query if k == "collection"), "default")
    if not re.fullmatch(r"[A-Za-z0-9_]{1,40}", collection):
        raise ConfigError(f"collection {collection!r}: use 1-40 letters, digits or underscores")
    rest = urlencode([(k, v) for k, v in query if k != "collection"], quote_via=quote)  # a space as %20: libpq reads + as +
    # not urlunsplit: it turns "postgresql:///db" (no host: the default socket) into "postgresql:/db"
    base = location.split("#", 1)[0].split("?", 1)[0]
    return base + (f"?{rest}" if rest else ""), f"rag_{collection.lower()}"


def _glob_to_like(pattern: str) -> str | None:
    if "[" in pattern:
        return None  # character classes: filtered in Python
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _where_sql(where: dict[str, Any] | None) -> tuple[str, list[Any], bool]:
    """SQL conditions for a metadata filter, their parameters, and whether Python must re-check."""
    from psycopg.types.json import Jsonb

    clauses, params, recheck = [], [], False
    for key, wanted in (where or {}).items():
        if key == "path":
            like = _glob_to_like(str(wanted))
            if like is None:
                recheck = True
            else:
                clauses.append("path LIKE %s")
                params.append(like)
        elif key == "section":
            clauses.append("section ? %s")
            params.append(str(wanted))
        elif key in CHUNK_FIELDS:  # a fixed name: safe in SQL
            if wanted is None:
                clauses.append(f"{key} IS NULL")
            else:
                clauses.append(f"{key} = %s")
                params.append(str(wanted))
        else:
            clauses.append("metadata @> %s")
            params.append(Jsonb({key: wanted}))
    return (" AND ".join(clauses) or "TRUE"), params, recheck


def _connection_lost(exc: Exception) -> bool:
    """Whether an OperationalError means the connection (or the server) is gone, as opposed to
    a statement the server ended (a timeout, a deadlock, a lock not available)."""
    import psycopg

    if isinstance(exc, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable,
                        psycopg.errors.DeadlockDetected)):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith(("08", "57P", "53"))  # connection, shutdown, resources


def _unwritten(default):
    """For a read: a collection that was never written (no schema or tables yet) reads as
    `default()`, and nothing is created."""
    def wrap(method):
        @functools.wraps(method)
        def read(self, *args, **kwargs):
            import psycopg

            try:
                return method(self, *args, **kwargs)
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
                return default()
        return read
    return wrap


def _row_to_chunk(row) -> Chunk:
    _, path, position, text, title, section, anchor, url, metadata = row[:9]
    return Chunk(path=path, text=text, position=position, title=title, section=tuple(section),
                 anchor=anchor, url=url, metadata=dict(metadata))


class PgVectorIndex(VectorIndex):
    """HNSW (cosine) over pgvector, PostgreSQL full-text search, one schema per collection."""

    def __init__(self, location: str, ef_search: int = 100, pool_size: int = 4):
        self.location = location
        self.conninfo, self.schema = split_location(location)
        self.ef_search, self.pool_size = ef_search, pool_size
        self._pool = None
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------
    @property
    def pool(self):
        with self._lock:  # read under the lock: another thread may discard it meanwhile
            if self._pool is None:
                self._pool = self._open()
            return self._pool

    def _open(self):
        psycopg = require("psycopg", "pg")
        pool_mod = require("psycopg_pool", "pg")
        from pgvector.psycopg import register_vector

        try:
            with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                # No DDL for an index that is up to date (a role that may only read can use it),
                # and none for one that does not exist yet: the first write creates it.
                if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                version = self._version(conn)
                if version is not None and version != len(MIGRATIONS):
                    self._migrate(conn)
        except psycopg.OperationalError as exc:
            raise RagError(f"Cannot connect to PostgreSQL at {self._redacted()}: {exc}".strip()) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise RagError(
                f"PostgreSQL at {self._redacted()} refused to set up the index {self.schema}: {exc}".strip()
                + ". Run the first `rag ingest` (which creates it, and the vector extension) as a role that "
                "may; a role that only reads needs USAGE on the schema and SELECT on its tables."
            ) from None
        except psycopg.ProgrammingError as exc:
            if getattr(exc, "sqlstate", None) is None:  # the client refused it: a misspelled URL parameter,
                # whose value may be a mistyped password: the parameters' values are not shown
                shown = self._redacted().split("?", 1)[0] + ("?..." if "?" in self.conninfo else "")
                raise ConfigError(f"Cannot use the PostgreSQL URL {shown}: {exc}".strip()) from None
            raise RagError(f"PostgreSQL at {self._redacted()}: {exc}".strip()) from None
        # prepare_threshold=None: no server-side prepared statements, whose cached generic
        # plans would ignore the per-query SET LOCAL of hnsw.ef_search.
        # A request waits at most POOL_WAIT_S for a connection: with the database down it fails in
        # seconds (a 503 from `rag serve`) instead of psycopg_pool's 30, which outlasts health
        # probes; each connection attempt gives up after CONNECT_TIMEOUT_S.
        return pool_mod.ConnectionPool(
            self.conninfo, min_size=1, max_size=self.pool_size, open=True, timeout=POOL_WAIT_S,
            kwargs={"prepare_threshold": None, "connect_timeout": CONNECT_TIMEOUT_S}, configure=register_vector,
            check=pool_mod.ConnectionPool.check_connection,  # a restarted server: reconnect, not fail
        )

    def _redacted(self) -> str:
        return mask_password(self.conninfo)

    def _version(self, conn) -> int | None:
        """The schema's migration number, None where it has none yet; read from the catalog
        first, so that no statement fails (and nothing is created) for a role that only reads."""
        if conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.schema_version",)).fetchone()[0] is None:
            return None
        row = conn.execute(f"SELECT version FROM {self.schema}.schema_version").fetchone()
        return row[0] if row else None

    def _migrate(self, conn) -> None:
        s = self.schema
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (s + ":migrate",))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)")
            row = conn.execute(f"SELECT version FROM {s}.schema_version").fetchone()
            version = row[0] if row else 0
            if row is None:
                conn.execute(f"INSERT INTO {s}.schema_version VALUES (0)")
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement.format(s=s))
                conn.execute(f"UPDATE {s}.schema_version SET version = %s", (number + 1,))

    @contextmanager
    def _conn(self):
        psycopg = require("psycopg", "pg")
        from psycopg_pool import PoolTimeout

        pool = self.pool
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDeniedError(
                f"PostgreSQL at {self._redacted()} refused: {str(exc).strip()}. A role that only reads needs USAGE on "
                f"the schema {self.schema} and SELECT on its tables, including those created later (ALTER DEFAULT "
                f"PRIVILEGES IN SCHEMA {self.schema} GRANT SELECT ON TABLES TO ...), and INSERT on "
                f"{self.schema}.answers to log answers (or log_answers = false); see docs/pgvector.md."
            ) from None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            lost = isinstance(exc, PoolTimeout) or _connection_lost(exc)
            if lost:
                # The pool goes: the next call opens a new one and connects at once (or fails at
                # once while the server is down), where the old one would wait out its backoff.
                self._discard_pool(pool)
            detail = str(exc).strip() or type(exc).__name__
            if not lost:  # a cancelled statement, a deadlock, a lock timeout: the server is there
                raise IndexWriteError(f"PostgreSQL at {self._redacted()} ended the statement ({detail}). "
                                      "Nothing uncommitted was kept; try again.") from exc
            # the server went away, restarted, or ran out of disk: say so, not a driver traceback.
            raise IndexWriteError(
                f"Lost the connection to PostgreSQL at {self._redacted()} ({detail}). "
                "Nothing uncommitted was kept: the index holds its last committed state. "
                "Try again when the database is back (an interrupted ingest resumes from its last commit)."
            ) from exc

    # -- reading --------------------------------------------------------------------
    @_unwritten(lambda: None)
    def info(self) -> IndexInfo | None:
        with self._conn() as conn:
            row = conn.execute(f"SELECT value FROM {self.schema}.meta WHERE key = 'info'").fetchone()
        return IndexInfo(**row[0]) if row else None

    @_unwritten(dict)
    def manifest(self) -> dict[str, FileRecord]:
        with self._conn() as conn:
            rows = conn.execute(f"SELECT path, hash, chunks, error FROM {self.schema}.files").fetchall()
        return {p: FileRecord(p, h, n, e) for p, h, n, e in rows}

    @_unwritten(lambda: 0)
    def count(self) -> int:
        with self._conn() as conn:
            return conn.execute(f"SELECT count(*) FROM {self.schema}.chunks").fetchone()[0]

    def chunks(self, path: str | None = None) -> Iterator[Chunk]:
        for row in self._chunk_rows(path):
            yield _row_to_chunk(row)

    @_unwritten(list)
    def _chunk_rows(self, path: str | None) -> list:
        sql = f"SELECT {_COLUMNS} FROM {self.schema}.chunks"
        args: tuple = ()
        if path is not None:
            sql, args = sql + " WHERE path = %s", (path,)
        with self._conn() as conn:
            return conn.execute(sql + " ORDER BY path, position", args).fetchall()

    def search_many(self, vectors, k, where=None):
        vectors = np.asarray(vectors, dtype=np.float32)
        return self._searched(vectors, k, where) or [[] for _ in vectors]

    def lexical_search_many(self, queries, k, where=None):
        return self._lexical(list(queries), k, where) or [[] for _ in queries]

    @_unwritten(list)
    def _searched(self, vectors, k, where=None):
        vectors = np.asarray(vectors, dtype=np.float32)
        if k <= 0:
            return [[] for _ in vectors]
        condition, params, recheck = _where_sql(where)
        fetch = k if not recheck else max(k * 10, 100)
        results = []
        with self._conn() as conn:
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {max(int(self.ef_search), fetch)}")
                if where:
                    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                for vector in vectors:
                    rows = conn.execute(
                        f"SELECT {_COLUMNS}, embedding <=> %s AS distance FROM {self.schema}.chunks "
                        f"WHERE {condition} ORDER BY distance LIMIT %s",
                        (vector, *params, fetch),
                    ).fetchall()
                    hits = [Hit(_row_to_chunk(r), 1.0 - float(r[-1])) for r in rows]
                    hits.sort(key=lambda h: -h.score)  # relaxed_order may be slightly out of order
                    results.append([h for h in hits if not recheck or matches(h.chunk, where)][:k])
        return results

    @_unwritten(list)
    def _lexical(self, queries, k, where=None):
        condition, params, recheck = _where_sql(where)
        fetch = k if not recheck else max(k * 10, 100)
        results = []
        with self._conn() as conn:
            for query in queries:
                terms = [t for t in re.findall(r"\w+", query.lower()) if t not in STOPWORDS]
                if not terms or k <= 0:
                    results.append([])
                    continue
                # PostgreSQL's ts_rank knows no inverse document frequency, so a common word
                # counts as much as a rare one. Score like BM25 without length normalization:
                # the sum of the IDFs of the query terms a chunk contains, ts_rank breaking ties.
                stats = conn.execute(
                    f"SELECT q::text, (SELECT count(*) FROM {self.schema}.chunks WHERE tsv @@ q), "
                    f"(SELECT count(*) FROM {self.schema}.chunks) "
                    "FROM unnest(%s::text[]) AS t, LATERAL to_tsquery('english', t) AS q WHERE q::text <> ''",
                    (list(dict.fromkeys(terms)),),
                ).fetchall()
                stats = [(q, df, n) for q, df, n in dict((s[0], s) for s in stats).values() if df]
                if not stats:
                    results.append([])
                    continue
                score = " + ".join(["%s * (tsv @@ %s::tsquery)::int"] * len(stats))
                weights = [x for q, df, n in stats for x in (math.log(1 + (n - df + 0.5) / (df + 0.5)), q)]
                any_term = " | ".join(f"({q})" for q, _, _ in stats)
                rows = conn.execute(
                    f"SELECT {_COLUMNS}, ({score}) + 0.01 * ts_rank(tsv, %s::tsquery) AS rank FROM {self.schema}.chunks "
                    f"WHERE tsv @@ %s::tsquery AND {condition} ORDER BY rank DESC, id LIMIT %s",
                    (*weights, any_term, any_term, *params, fetch),
                ).fetchall()
                hits = [Hit(_row_to_chunk(r), float(r[-1])) for r in rows]
                results.append([h for h in hits if not recheck or matches(h.chunk, where)][:k])
        return results

    def explain(self, vector, k: int) -> str:
        """The query plan of a dense search (to check that HNSW is used)."""
        with self._conn() as conn:
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {int(self.ef_search)}")
                rows = conn.execute(
                    f"EXPLAIN SELECT id FROM {self.schema}.chunks ORDER BY embedding <=> %s LIMIT %s",
                    (np.asarray(vector, dtype=np.float32), k),
                ).fetchall()
        return "\n".join(r[0] for r in rows)

    # -- writing --------------------------------------------------------------------
    @contextmanager
    def writer(self, info: IndexInfo) -> Iterator[IndexWriter]:
        with self._conn() as conn:
            if self._version(conn) != len(MIGRATIONS):  # the first write creates the collection
                self._migrate(conn)
                conn.commit()
            with conn.transaction():
                locked = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (self.schema,)).fetchone()[0]
                if not locked:
                    raise IndexLockedError(
                        f"Another process is writing to the index {self.schema} at {self._redacted()}. "
                        "Wait for it to finish, then run this again."
                    )
                self.check_model(info.embedding_model, info.dimension or None)
                current = self.info()
                if current is not None and not info.dimension:
                    info = replace(info, dimension=current.dimension)
                w = _PgWriter(conn, self.schema, info, has_vectors=current is not None)
                yield w
                if w.info.dimension:
                    from psycopg.types.json import Jsonb

                    conn.execute(
                        f"INSERT INTO {self.schema}.meta VALUES ('info', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        (Jsonb(w.info.__dict__),),
                    )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
            self._pool = None

    def _discard_pool(self, pool) -> None:
        with self._lock:
            if self._pool is not pool:  # another thread already replaced it
                return
            self._pool = None
        if pool is not None:  # in the background: its workers may be waiting out a reconnection
            threading.Thread(target=self._close_quietly, args=(pool,), daemon=True).start()

    @staticmethod
    def _close_quietly(pool) -> None:
        try:
            pool.close()
        except Exception:  # noqa: BLE001 - closing a pool whose server is gone
            log.debug("closing the PostgreSQL pool failed", exc_info=True)


class _PgWriter(IndexWriter):
    def __init__(self, conn, schema: str, info: IndexInfo, has_vectors: bool):
        self.conn, self.schema, self.info, self.has_vectors = conn, schema, info, has_vectors

    def remove_files(self, paths):
        if paths:
            self.conn.execute(f"DELETE FROM {self.schema}.chunks WHERE path = ANY(%s)", (list(paths),))
            self.conn.execute(f"DELETE FROM {self.schema}.files WHERE path = ANY(%s)", (list(paths),))

    def add_chunks(self, chunks, vectors):
        from psycopg.types.json import Jsonb

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        if not chunks:
            return
        if not self.info.dimension:
            self.info = replace(self.info, dimension=int(vectors.shape[1]))
        if vectors.shape[1] != self.info.dimension:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, index {self.info.dimension}")
        if not self.has_vectors:  # first write: fix the dimension and build the HNSW index
            d = int(self.info.dimension)
            self.conn.execute(f"ALTER TABLE {self.schema}.chunks ALTER COLUMN embedding TYPE vector({d})")
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON {self.schema}.chunks "
                "USING hnsw (embedding vector_cosine_ops)"
            )
            self.has_vectors = True
        columns = "path, position, text, title, section, anchor, url, metadata, embedding"
        with self.conn.cursor().copy(f"COPY {self.schema}.chunks ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "text", "text", "jsonb", "text", "text", "jsonb", "vector"])
            for c, v in zip(chunks, vectors):
                copy.write_row([c.path, c.position, c.text, c.title, Jsonb(list(c.section)), c.anchor, c.url,
                                Jsonb(c.metadata), v])

    def record_files(self, files):
        if not files:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.schema}.files (path, hash, chunks, error) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (path) DO UPDATE SET hash = EXCLUDED.hash, chunks = EXCLUDED.chunks, "
                "error = EXCLUDED.error, ingested_at = now()",
                [(f.path, f.hash, f.chunks, f.error) for f in files],
            )
