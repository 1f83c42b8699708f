"""The corrections store and the answer log, beside an index and never mixed into it.

A FAISS index directory gets `corrections.sqlite`; a PostgreSQL index gets tables in its
collection's schema. Both hold: corrections (question, its embedding, the corrected
answer, what it replaces, reason, author, time, active flag, sources, review flag), the
log of every answer given, and feedback on answers. Re-ingesting never touches them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from indexes.errors import PermissionDeniedError


def now() -> str:
    # microseconds: rows written in the same second still sort in the order they were written
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def utc_stamp(value: str, leeway: timedelta = timedelta(minutes=5)) -> str:
    """An ISO 8601 time from elsewhere (an import) as `now()` writes it, so that times compare
    as text: UTC, to the microsecond. A time without a zone is taken as UTC. A time more than
    `leeway` ahead of this machine's clock is refused, and one less far ahead (another
    machine's clock) is stored as now: the newest link of a question stands, new links are
    stamped after it, and a thumbs down counts as settled by what was written after it, so a
    stamp from the future would settle the complaints that come before it is reached."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"created_at {value!r} is not an ISO 8601 time") from None
    current = datetime.now(timezone.utc)
    if moment > current + leeway:
        raise ValueError(f"created_at {value!r} is in the future by this machine's clock: "
                         f"fix the time (or the clock) and import again")
    return min(moment, current).isoformat(timespec="microseconds")  # a clock a little ahead: now


def new_id() -> str:
    return uuid.uuid4().hex[:12]


# The reason of a `same_as` link an asker confirmed (`Assistant.confirm`), and its review note
# until a reviewer checks it.
ASKER_REASON = "confirmed by the asker"
ASKER_REVIEW = "confirmed by the asker, not yet by a reviewer"


@dataclass
class Correction:
    question: str
    answer: str
    author: str = "unknown"
    reason: str | None = None
    replaces_answer_id: str | None = None
    bad_answer: str | None = None
    sources: list[str] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=now)
    active: bool = True
    review: str | None = None  # why a human should look at it again (a cited file changed)
    model: str = ""  # the embedding model of its question vector
    # A question a human linked to another correction: `same_as` (it asks what that one
    # answers: its answer applies) or `not_same_as` (it asks something else: that one must
    # not apply to it). Such a link has no answer of its own.
    same_as: str | None = None
    not_same_as: str | None = None

    @property
    def linked_to(self) -> str | None:
        return self.same_as or self.not_same_as

    @property
    def unreviewed(self) -> bool:
        """A `same_as` link an asker confirmed (`ASKER_REASON`) that no reviewer has checked: it
        has a review note until `rag corrections enable` clears it, or a reviewer's own link of
        the question replaces it. Disabled (`pending`) unless askers' links apply at once."""
        return bool(self.same_as) and self.reason == ASKER_REASON and self.review is not None

    @property
    def pending(self) -> bool:
        """An asker's `same_as` link that waits for a reviewer before it applies."""
        return self.unreviewed and not self.active

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AnswerRecord:
    id: str
    question: str
    answer: str
    sources: list[dict]
    model: str
    prompt: str
    correction_id: str | None = None
    error: str | None = None
    created_at: str = field(default_factory=now)
    conversation_id: str | None = None  # the conversation it belongs to, if any
    turn: int = 0  # its place in that conversation, from 0


@dataclass
class Feedback:
    answer_id: str
    good: bool
    comment: str | None = None
    created_at: str = field(default_factory=now)
    question: str | None = None
    answer: str | None = None
    correction_id: str | None = None  # the correction the answer was, if one applied


_ANSWER_FIELDS = ["id", "question", "answer", "sources", "model", "prompt", "correction_id", "error", "created_at",
                  "conversation_id", "turn"]
_FIELDS = ["id", "question", "answer", "author", "reason", "replaces_answer_id", "bad_answer", "sources",
           "created_at", "active", "review", "model", "same_as", "not_same_as"]
_LINKS = ("same_as", "not_same_as")  # columns added after the first release


class CorrectionStore(ABC):
    """Storage only: matching and the workflow live in `rag.corrections`."""

    @abstractmethod
    def add(self, correction: Correction, embedding: np.ndarray) -> str: ...

    @abstractmethod
    def add_if_absent(self, correction: Correction, embedding: np.ndarray) -> bool:
        """Add a correction unless one with its id is stored (an import run twice at once); True if added."""

    @abstractmethod
    def get(self, correction_id: str) -> Correction | None: ...

    @abstractmethod
    def list(self, include_inactive: bool = True) -> list[Correction]: ...

    @abstractmethod
    def update(self, correction_id: str, **changes: Any) -> bool: ...

    @abstractmethod
    def remove(self, correction_id: str) -> bool:
        """Delete a correction and the questions linked to it."""

    @abstractmethod
    def nearest(self, vector: np.ndarray, n: int = 3) -> list[tuple[Correction, float]]:
        """Active corrections closest to the vector, with cosine similarity, best first."""

    def embedding(self, correction_id: str) -> np.ndarray | None:
        """The stored embedding of a correction's question (None: not stored, or a store that
        cannot say; the caller embeds the question again)."""
        return None

    @abstractmethod
    def log_answer(self, record: AnswerRecord) -> None: ...

    @abstractmethod
    def get_answer(self, answer_id: str) -> AnswerRecord | None: ...

    @abstractmethod
    def conversation(self, conversation_id: str, last: int = 3) -> list[AnswerRecord]:
        """The last `last` answers logged in a conversation, oldest first."""

    @abstractmethod
    def recent_answers(self, limit: int = 1000) -> list[AnswerRecord]:
        """The last `limit` answers the model gave (no correction applied, no error), newest first."""

    @abstractmethod
    def add_feedback(self, feedback: Feedback) -> None: ...

    @abstractmethod
    def list_feedback(self, bad_only: bool = False) -> list[Feedback]: ...

    @abstractmethod
    def get_meta(self, key: str) -> Any: ...

    @abstractmethod
    def set_meta(self, key: str, value: Any) -> None: ...

    def flag_for_review(self, paths: list[str], reason: str) -> list[str]:
        """Flag active corrections that cite any of `paths`; returns their ids."""
        wanted = set(paths)
        flagged = []
        for c in self.list(include_inactive=False):
            hit = [s for s in c.sources if s.split("#", 1)[0] in wanted]
            if hit:
                self.update(c.id, review=f"{reason}: {', '.join(sorted(hit))}")
                flagged.append(c.id)
        return flagged

    def close(self) -> None:
        pass


def _as_sources(value) -> list[str]:
    """The stored sources as a list of paths, whatever an earlier release let in (a JSON
    string where a list belongs): a store that cannot be read cannot be fixed either."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value] if isinstance(value, list) else []


def _row_to_correction(row) -> Correction:
    data = dict(zip(_FIELDS, row))
    data["sources"] = _as_sources(data["sources"])
    data["active"] = bool(data["active"])
    return Correction(**data)


def _row_to_answer(row) -> AnswerRecord:
    data = dict(zip(_ANSWER_FIELDS, row))
    data["sources"] = json.loads(data["sources"]) if isinstance(data["sources"], str) else list(data["sources"] or [])
    return AnswerRecord(**data)


class SqliteCorrectionStore(CorrectionStore):
    """corrections.sqlite inside a FAISS index directory; exact search over active corrections."""

    SCHEMA = [
        """CREATE TABLE IF NOT EXISTS corrections (
            id TEXT PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL, author TEXT, reason TEXT,
            replaces_answer_id TEXT, bad_answer TEXT, sources TEXT NOT NULL, created_at TEXT NOT NULL,
            active INTEGER NOT NULL, review TEXT, model TEXT NOT NULL, embedding BLOB NOT NULL, same_as TEXT,
            not_same_as TEXT)""",
        """CREATE TABLE IF NOT EXISTS answers (
            id TEXT PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL, sources TEXT NOT NULL,
            model TEXT, prompt TEXT, correction_id TEXT, error TEXT, created_at TEXT NOT NULL,
            conversation_id TEXT, turn INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE IF NOT EXISTS feedback (
            id INTEGER PRIMARY KEY, answer_id TEXT NOT NULL, good INTEGER NOT NULL, comment TEXT,
            created_at TEXT NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / "corrections.sqlite"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # writes and the matrix of `nearest`
        self._opening = threading.Lock()  # the connection is opened once, whoever asks first
        self._matrix: tuple[list[str], np.ndarray] | None = None
        self._matrix_key: tuple[int, int] | None = None  # (connection, data_version) it was read at
        self._empty: sqlite3.Connection | None = None

    def _db(self, write: bool = False) -> sqlite3.Connection:
        conn = self._conn
        if conn is not None:
            return conn
        with self._opening:
            if self._conn is None:
                if not write and not self.path.exists():
                    if self._empty is None:
                        self._empty = self._empty_store()
                    return self._empty  # reading creates no file (nor the index's folder)
                self._conn = self._open()
            return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path.parent.is_dir() and not os.access(self.path.parent, os.W_OK):
            return self._read_only()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in self.SCHEMA:
            conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(answers)")}
        if "conversation_id" not in columns:  # written before conversations existed
            conn.execute("ALTER TABLE answers ADD COLUMN conversation_id TEXT")
            conn.execute("ALTER TABLE answers ADD COLUMN turn INTEGER NOT NULL DEFAULT 0")
        conn.execute("CREATE INDEX IF NOT EXISTS answers_conversation ON answers (conversation_id, turn)")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(corrections)")}
        for column in _LINKS:  # written before linked questions existed
            if column not in columns:
                try:
                    conn.execute(f"ALTER TABLE corrections ADD COLUMN {column} TEXT")
                except sqlite3.OperationalError as exc:  # another replica added it first
                    if "duplicate column" not in str(exc):
                        raise
        return conn

    def _empty_store(self) -> sqlite3.Connection:
        """An empty store in memory: reads before anything is written here, or a read-only folder without one."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        for statement in self.SCHEMA:
            conn.execute(statement)
        conn.execute("PRAGMA query_only = 1")
        return conn

    def _read_only(self) -> sqlite3.Connection:
        """Read-only storage: the corrections as they are (immutable), or none; writes fail clearly."""
        if self.path.exists():
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(corrections)")}
            missing = [c for c in _LINKS if c not in columns]
            if columns and missing:  # written before linked questions existed: a view adds them (temp, in memory)
                conn.execute("CREATE TEMP VIEW corrections AS SELECT *, "
                             + ", ".join(f"NULL AS {c}" for c in missing) + " FROM main.corrections")
            return conn
        return self._empty_store()

    def _write(self, sql: str, args: tuple = (), corrections: bool = False) -> int:
        with self._lock:
            cursor = self._db(write=True).execute(sql, args)
            if corrections:
                self._matrix = None
            return cursor.rowcount

    def add(self, correction, embedding):
        self._insert(correction, embedding, "INSERT")
        return correction.id

    def add_if_absent(self, correction, embedding):
        return self._insert(correction, embedding, "INSERT OR IGNORE") == 1

    def _insert(self, correction, embedding, verb: str) -> int:
        vector = np.asarray(embedding, dtype=np.float32)
        c = correction
        values = {**c.to_dict(), "sources": json.dumps(c.sources), "active": int(c.active)}
        return self._write(
            f"{verb} INTO corrections ({', '.join(_FIELDS)}, embedding) VALUES ({', '.join('?' * (len(_FIELDS) + 1))})",
            (*(values[f] for f in _FIELDS), vector.tobytes()),
            corrections=True,
        )

    def get(self, correction_id):
        row = self._db().execute(f"SELECT {', '.join(_FIELDS)} FROM corrections WHERE id = ?", (correction_id,)).fetchone()
        return _row_to_correction(row) if row else None

    def list(self, include_inactive=True):
        sql = f"SELECT {', '.join(_FIELDS)} FROM corrections" + ("" if include_inactive else " WHERE active = 1")
        return [_row_to_correction(r) for r in self._db().execute(sql + " ORDER BY created_at, id")]

    def update(self, correction_id, **changes):
        allowed = {"active", "review", "answer", "reason", "sources", "same_as", "not_same_as"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"can only change {sorted(allowed)}")
        values = [json.dumps(v) if k == "sources" else (int(v) if k == "active" else v) for k, v in changes.items()]
        sets = ", ".join(f"{k} = ?" for k in changes)
        return self._write(f"UPDATE corrections SET {sets} WHERE id = ?", (*values, correction_id), corrections=True) > 0

    def remove(self, correction_id):
        sql = "DELETE FROM corrections WHERE id = ? OR same_as = ? OR not_same_as = ?"
        return self._write(sql, (correction_id,) * 3, corrections=True) > 0

    def nearest(self, vector, n=3):
        with self._lock:
            # data_version moves when another connection (a replica, `rag correct`) commits; the
            # connection changes when the file appears (until then, reads see an empty store)
            conn = self._db()
            key = (id(conn), conn.execute("PRAGMA data_version").fetchone()[0])
            if self._matrix is None or self._matrix_key != key:
                rows = conn.execute("SELECT id, embedding FROM corrections WHERE active = 1").fetchall()
                ids = [r[0] for r in rows]
                matrix = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 1), np.float32)
                self._matrix, self._matrix_key = (ids, matrix), key
            ids, matrix = self._matrix
        if not ids:
            return []
        sims = matrix @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims)[:n]
        return [(self.get(ids[i]), float(sims[i])) for i in order]

    def embedding(self, correction_id):
        row = self._db().execute("SELECT embedding FROM corrections WHERE id = ?", (correction_id,)).fetchone()
        return np.frombuffer(row[0], dtype=np.float32) if row else None

    def log_answer(self, record):
        r = record
        self._write(f"INSERT OR REPLACE INTO answers ({', '.join(_ANSWER_FIELDS)}) VALUES ({', '.join('?' * len(_ANSWER_FIELDS))})",
                    (r.id, r.question, r.answer, json.dumps(r.sources), r.model, r.prompt, r.correction_id, r.error,
                     r.created_at, r.conversation_id, r.turn))

    def get_answer(self, answer_id):
        row = self._db().execute(f"SELECT {', '.join(_ANSWER_FIELDS)} FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return _row_to_answer(row) if row else None

    def conversation(self, conversation_id, last=3):
        rows = self._db().execute(
            f"SELECT {', '.join(_ANSWER_FIELDS)} FROM answers WHERE conversation_id = ? ORDER BY turn DESC LIMIT ?",
            (conversation_id, last)).fetchall()
        return [_row_to_answer(r) for r in reversed(rows)]

    def recent_answers(self, limit=1000):
        rows = self._db().execute(
            f"SELECT {', '.join(_ANSWER_FIELDS)} FROM answers WHERE correction_id IS NULL AND error IS NULL "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)).fetchall()
        return [_row_to_answer(r) for r in rows]

    def add_feedback(self, feedback):
        self._write("INSERT INTO feedback (answer_id, good, comment, created_at) VALUES (?, ?, ?, ?)",
                    (feedback.answer_id, int(feedback.good), feedback.comment, feedback.created_at))

    def list_feedback(self, bad_only=False):
        sql = ("SELECT f.answer_id, f.good, f.comment, f.created_at, a.question, a.answer, a.correction_id FROM feedback f "
               "LEFT JOIN answers a ON a.id = f.answer_id" + (" WHERE f.good = 0" if bad_only else "") + " ORDER BY f.id")
        return [Feedback(r[0], bool(r[1]), *r[2:]) for r in self._db().execute(sql)]

    def get_meta(self, key):
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key, value):
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def close(self):
        with self._lock:
            for conn in (self._conn, self._empty):
                if conn is not None:
                    conn.close()
            self._conn, self._empty, self._matrix = None, None, None


class PgCorrectionStore(CorrectionStore):
    """Tables beside a pgvector index, in its collection's schema; search with pgvector."""

    def __init__(self, index):
        self.index = index  # a PgVectorIndex: shares its pool and schema
        self.schema = index.schema
        self._ready = False

    # The tables and columns a current store has: where all are there, no DDL runs (a role that
    # may only read can use it), and a store never written reads as empty and creates nothing.
    _EXPECTED = {"corrections": {"id", *_LINKS}, "answers": {"id", "conversation_id", "turn"}, "feedback": {"id"},
                 "corrections_meta": {"key"}}

    def _state(self) -> str:
        """"current", "missing" (no corrections table) or "old" (to create or upgrade)."""
        with self.index._conn() as conn:
            rows = conn.execute(
                "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = c.oid WHERE n.nspname = %s AND c.relname = ANY(%s) "
                "AND a.attnum > 0 AND NOT a.attisdropped", (self.schema, list(self._EXPECTED))).fetchall()
            indexed = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.answers_conversation",)).fetchone()[0]
        found: dict[str, set] = {}
        for table, column in rows:
            found.setdefault(table, set()).add(column)
        if "corrections" not in found:
            return "missing"
        current = indexed is not None and all(cols <= found.get(t, set()) for t, cols in self._EXPECTED.items())
        return "current" if current else "old"

    def _reads(self) -> bool:
        """Whether there is anything to read (a store never written has no tables)."""
        if not self._ready:
            state = self._state()
            if state == "missing":
                return False
            if state == "current":
                self._ready = True
        return True

    def _conn(self):
        if not self._ready and self._state() == "current":
            self._ready = True
        if not self._ready:
            try:
                self._create()
            except PermissionDeniedError as exc:
                raise PermissionDeniedError(
                    f"The corrections tables of {self.schema} are missing or from an earlier release, and this role may "
                    "not create or upgrade them: run a command that writes (rag correct, rag feedback add, or an ask "
                    f"that logs its answer) once as the role that owns the schema. ({exc})") from None
            self._ready = True
        return self.index._conn()

    def _create(self) -> None:
        s = self.schema
        with self.index._conn() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (s + ":corrections",))
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")  # corrections before any ingest
                conn.execute(f"""CREATE TABLE IF NOT EXISTS {s}.corrections (
                    id text PRIMARY KEY, question text NOT NULL, answer text NOT NULL, author text, reason text,
                    replaces_answer_id text, bad_answer text, sources jsonb NOT NULL, created_at text NOT NULL,
                    active boolean NOT NULL, review text, model text NOT NULL, embedding vector NOT NULL,
                    same_as text, not_same_as text)""")
                for column in _LINKS:  # tables written before linked questions existed
                    conn.execute(f"ALTER TABLE {s}.corrections ADD COLUMN IF NOT EXISTS {column} text")
                conn.execute(f"""CREATE TABLE IF NOT EXISTS {s}.answers (
                    id text PRIMARY KEY, question text NOT NULL, answer text NOT NULL, sources jsonb NOT NULL,
                    model text, prompt text, correction_id text, error text, created_at text NOT NULL,
                    conversation_id text, turn integer NOT NULL DEFAULT 0)""")
                # answers logged before conversations existed
                conn.execute(f"ALTER TABLE {s}.answers ADD COLUMN IF NOT EXISTS conversation_id text")
                conn.execute(f"ALTER TABLE {s}.answers ADD COLUMN IF NOT EXISTS turn integer NOT NULL DEFAULT 0")
                conn.execute(f"CREATE INDEX IF NOT EXISTS answers_conversation ON {s}.answers (conversation_id, turn)")
                conn.execute(f"""CREATE TABLE IF NOT EXISTS {s}.feedback (
                    id bigserial PRIMARY KEY, answer_id text NOT NULL, good boolean NOT NULL, comment text,
                    created_at text NOT NULL)""")
                conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.corrections_meta (key text PRIMARY KEY, value jsonb NOT NULL)")

    def add(self, correction, embedding):
        self._insert(correction, embedding, "")
        return correction.id

    def add_if_absent(self, correction, embedding):
        return self._insert(correction, embedding, " ON CONFLICT (id) DO NOTHING") == 1

    def _insert(self, correction, embedding, on_conflict: str) -> int:
        from psycopg.types.json import Jsonb

        c = correction
        values = {**c.to_dict(), "sources": Jsonb(c.sources)}
        with self._conn() as conn:
            cursor = conn.execute(
                f"INSERT INTO {self.schema}.corrections ({', '.join(_FIELDS)}, embedding) "
                f"VALUES ({', '.join(['%s'] * (len(_FIELDS) + 1))}){on_conflict}",
                (*(values[f] for f in _FIELDS), np.asarray(embedding, dtype=np.float32)),
            )
            return cursor.rowcount

    def get(self, correction_id):
        if not self._reads():
            return None
        with self._conn() as conn:
            row = conn.execute(f"SELECT {', '.join(_FIELDS)} FROM {self.schema}.corrections WHERE id = %s",
                               (correction_id,)).fetchone()
        return _row_to_correction(row) if row else None

    def list(self, include_inactive=True):
        if not self._reads():
            return []
        sql = f"SELECT {', '.join(_FIELDS)} FROM {self.schema}.corrections" + ("" if include_inactive else " WHERE active")
        with self._conn() as conn:
            return [_row_to_correction(r) for r in conn.execute(sql + " ORDER BY created_at, id").fetchall()]

    def update(self, correction_id, **changes):
        from psycopg.types.json import Jsonb

        allowed = {"active", "review", "answer", "reason", "sources", "same_as", "not_same_as"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"can only change {sorted(allowed)}")
        values = [Jsonb(v) if k == "sources" else v for k, v in changes.items()]
        sets = ", ".join(f"{k} = %s" for k in changes)
        with self._conn() as conn:
            return conn.execute(f"UPDATE {self.schema}.corrections SET {sets} WHERE id = %s",
                                (*values, correction_id)).rowcount > 0

    def remove(self, correction_id):
        with self._conn() as conn:
            return conn.execute(f"DELETE FROM {self.schema}.corrections WHERE id = %s OR same_as = %s OR not_same_as = %s",
                                (correction_id,) * 3).rowcount > 0

    def nearest(self, vector, n=3):
        if not self._reads():
            return []
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_FIELDS)}, 1 - (embedding <=> %s) FROM {self.schema}.corrections "
                "WHERE active ORDER BY embedding <=> %s LIMIT %s",
                (np.asarray(vector, dtype=np.float32), np.asarray(vector, dtype=np.float32), n),
            ).fetchall()
        return [(_row_to_correction(r[:-1]), float(r[-1])) for r in rows]

    def embedding(self, correction_id):
        if not self._reads():
            return None
        with self._conn() as conn:
            row = conn.execute(f"SELECT embedding FROM {self.schema}.corrections WHERE id = %s", (correction_id,)).fetchone()
        if row is None:
            return None
        value = row[0]
        return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)

    def log_answer(self, record):
        from psycopg.types.json import Jsonb

        r = record
        with self._conn() as conn:
            conn.execute(
                f"INSERT INTO {self.schema}.answers ({', '.join(_ANSWER_FIELDS)}) "
                f"VALUES ({', '.join(['%s'] * len(_ANSWER_FIELDS))}) ON CONFLICT (id) DO NOTHING",
                (r.id, r.question, r.answer, Jsonb(r.sources), r.model, r.prompt, r.correction_id, r.error, r.created_at,
                 r.conversation_id, r.turn),
            )

    def get_answer(self, answer_id):
        if not self._reads():
            return None
        with self._conn() as conn:
            row = conn.execute(f"SELECT {', '.join(_ANSWER_FIELDS)} FROM {self.schema}.answers WHERE id = %s",
                               (answer_id,)).fetchone()
        return _row_to_answer(row) if row else None

    def conversation(self, conversation_id, last=3):
        if not self._reads():
            return []
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_ANSWER_FIELDS)} FROM {self.schema}.answers WHERE conversation_id = %s "
                "ORDER BY turn DESC LIMIT %s", (conversation_id, last)).fetchall()
        return [_row_to_answer(r) for r in reversed(rows)]

    def recent_answers(self, limit=1000):
        if not self._reads():
            return []
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(_ANSWER_FIELDS)} FROM {self.schema}.answers "
                "WHERE correction_id IS NULL AND error IS NULL ORDER BY created_at DESC LIMIT %s", (limit,)).fetchall()
        return [_row_to_answer(r) for r in rows]

    def add_feedback(self, feedback):
        with self._conn() as conn:
            conn.execute(f"INSERT INTO {self.schema}.feedback (answer_id, good, comment, created_at) VALUES (%s, %s, %s, %s)",
                         (feedback.answer_id, feedback.good, feedback.comment, feedback.created_at))

    def list_feedback(self, bad_only=False):
        if not self._reads():
            return []
        sql = (f"SELECT f.answer_id, f.good, f.comment, f.created_at, a.question, a.answer, a.correction_id "
               f"FROM {self.schema}.feedback f "
               f"LEFT JOIN {self.schema}.answers a ON a.id = f.answer_id" + (" WHERE NOT f.good" if bad_only else "") + " ORDER BY f.id")
        with self._conn() as conn:
            return [Feedback(*r) for r in conn.execute(sql).fetchall()]

    def get_meta(self, key):
        if not self._reads():
            return None
        with self._conn() as conn:
            row = conn.execute(f"SELECT value FROM {self.schema}.corrections_meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key, value):
        from psycopg.types.json import Jsonb

        with self._conn() as conn:
            conn.execute(f"INSERT INTO {self.schema}.corrections_meta VALUES (%s, %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, Jsonb(value)))


def open_corrections(index) -> CorrectionStore:
    """The corrections store that lives with `index`."""
    from indexes.faiss_index import FaissIndex

    if isinstance(index, FaissIndex):
        return SqliteCorrectionStore(index.directory)
    return PgCorrectionStore(index)
