import numpy as np
import pytest

from indexes.pgvector_index import PgVectorIndex, split_location
from tests.conftest import write_chunks
from tests.index_contract import E, IndexContract, chunks

pytestmark = pytest.mark.integration


class TestPgVectorIndex(IndexContract):
    @pytest.fixture
    def make_index(self, pg_collection):
        opened = []

        def make():
            opened.append(PgVectorIndex(pg_collection))
            return opened[-1]

        yield make
        for index in opened:
            index.close()


def test_location_keeps_libpq_parameters_and_picks_the_collection():
    conninfo, schema = split_location("postgresql://u:p@/db?host=/tmp/sock&collection=Docs_2")
    assert conninfo == "postgresql://u:p@/db?host=%2Ftmp%2Fsock" and schema == "rag_docs_2"
    assert split_location("postgresql://h/db")[1] == "rag_default"
    with pytest.raises(Exception, match="collection"):
        split_location("postgresql://h/db?collection=a;drop")
    # a space in a parameter stays %20 (libpq reads "+" as a plus sign)
    assert split_location("postgresql://h/db?options=-c%20statement_timeout%3D1234")[0] == \
        "postgresql://h/db?options=-c%20statement_timeout%3D1234"
    # no host: libpq's default socket ("postgresql:///db"), kept as written
    assert split_location("postgresql:///db?host=/s&collection=x") == ("postgresql:///db?host=%2Fs", "rag_x")


def test_a_location_that_looks_like_a_url_but_not_postgresql_is_refused(tmp_path, monkeypatch):
    from indexes import ConfigError, open_index
    from indexes.base import mask_password

    monkeypatch.chdir(tmp_path)
    for typo in ("postgresq://u:s3cret@db:5432/rag", "postgresql:/u:s3cret@db/rag", "s3://bucket/idx",
                 "postgresql//u:s3cret@db/rag", "Postgres:/db"):
        with pytest.raises(ConfigError, match="not an index location") as caught:
            open_index(typo)
        assert "s3cret" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    assert open_index(str(tmp_path / "idx")).location.endswith("idx")  # a directory still is one
    assert mask_password("postgresql://h/db?user=u&password=s3cret&sslmode=require") == \
        "postgresql://h/db?user=u&password=***&sslmode=require"
    assert mask_password("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"


def test_a_misspelled_url_parameter_is_one_line(pg_dsn):
    from indexes import ConfigError

    sep = "&" if "?" in pg_dsn else "?"
    with pytest.raises(ConfigError, match="colection"):
        PgVectorIndex(f"{pg_dsn}{sep}colection=x").count()
    with pytest.raises(ConfigError) as caught:  # a mistyped password parameter: its value is not shown
        PgVectorIndex(f"{pg_dsn}{sep}pasword=S3cretTYPO").count()
    assert "pasword" in str(caught.value) and "S3cretTYPO" not in str(caught.value)


def test_reading_a_collection_never_written_creates_nothing(pg_collection):
    import psycopg

    from indexes.corrections import PgCorrectionStore

    index = PgVectorIndex(pg_collection)
    assert (index.info(), index.manifest(), index.count(), list(index.chunks())) == (None, {}, 0, [])
    assert index.search(E.embed_query("alpha"), 3) == [] and index.lexical_search("alpha", 3) == []
    assert PgCorrectionStore(index).list() == []
    conninfo, schema = split_location(pg_collection)
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None
    write_chunks(index, E, {"a.md": chunks("a.md", "alpha")})  # the first write creates it
    assert index.count() == 1
    index.close()


def test_collections_are_separate(pg_collection):
    a = PgVectorIndex(pg_collection)
    b = PgVectorIndex(pg_collection + "_other")
    write_chunks(a, E, {"a.md": chunks("a.md", "alpha")})
    assert a.count() == 1 and b.count() == 0 and b.info() is None
    a.close(), b.close()


def test_large_index_uses_hnsw(pg_collection):
    index = PgVectorIndex(pg_collection)
    rng = np.random.default_rng(0)
    n = 5000
    vectors = rng.standard_normal((n, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    from indexes import Chunk, FileRecord, IndexInfo

    with index.writer(IndexInfo("fake-hash", 64)) as w:
        w.add_chunks([Chunk(f"f{i // 100}.md", f"t{i}", i % 100) for i in range(n)], vectors)
        w.record_files([FileRecord(f"f{j}.md", "h", 100) for j in range(n // 100)])
    with index._conn() as conn:
        conn.execute(f"ANALYZE {index.schema}.chunks")
    plan = index.explain(vectors[0], 5)
    assert "chunks_embedding_hnsw" in plan, plan
    for _ in range(8):  # many runs: no cached generic plan takes over
        assert index.search(vectors[7], 1)[0].chunk.text == "t7"
    index.close()


from tests.corrections_contract import CorrectionStoreContract  # noqa: E402


class TestPgCorrectionStore(CorrectionStoreContract):
    @pytest.fixture
    def store(self, pg_collection):
        from indexes.corrections import open_corrections

        index = PgVectorIndex(pg_collection)
        yield open_corrections(index)
        index.close()


def test_a_correction_holds_on_pgvector(pg_collection):
    from indexes import Chunk
    from rag import Assistant, Config
    from rag.llm import ScriptedChat

    index = PgVectorIndex(pg_collection)
    write_chunks(index, E, {"docs/a.md": [Chunk("docs/a.md", "upgrade wombat with self-update", 0)]})
    assistant = Assistant(Config(index=pg_collection, embedding_model="fake-hash"), index=index, embedder=E,
                          llm=ScriptedChat("Use apt [1]."))
    bad = assistant.ask("how do I upgrade wombat")
    assistant.feedback(bad.id, good=False)
    c = assistant.correct("Run wombat self-update.", answer_id=bad.id, author="ana")
    assert np.allclose(assistant.corrections.embedding(c.id), E.embed_query(c.question))
    assert assistant.corrections.embedding("nope") is None
    fixed = assistant.ask("How do I upgrade Wombat?")
    assert fixed.text == "Run wombat self-update." and fixed.correction["id"] == c.id
    missed = assistant.ask("how do I delete photos")
    assert missed.correction is None
    assert [f.answer_id for f in assistant.corrections.list_feedback(bad_only=True)] == [bad.id]
    # the review queue, on PostgreSQL's answer log (a matcher that turns everything down)
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    queue = assistant.suggest_links(min_similarity=-1.0)
    assert [(s["answer_id"], s["correction_id"]) for s in queue] == [(missed.id, c.id)]
    # the asker confirms the correction offered: it waits for a reviewer, first in the queue
    asked = assistant.ask("how do I delete photos")
    [offer] = asked.related_corrections
    link = assistant.corrections.get(assistant.confirm(asked.id, offer["id"]).correction["link"])
    assert link.pending and assistant.ask("how do I delete photos").correction is None
    assert assistant.suggest_links(min_similarity=-1.0)[0]["asker_link"] == link.id
    assistant.corrections.set_meta("matcher", None)
    # a question linked to the correction gets it; one linked as not the same keeps its own answer
    assistant.correct(answer_id=missed.id, same_as=c.id)
    assert assistant.corrections.get(link.id) is None  # the reviewer's link stands in for the asker's
    assert assistant.ask("How do I delete photos?").correction["id"] == c.id
    assistant.correct(question="How do I upgrade Wombat plugins?", not_same_as=c.id)
    assistant.corrections.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.0, "weights": [0.0] * 6})
    assert assistant.ask("how do I upgrade wombat plugins").correction is None
    assert assistant.ask("how do I upgrade wombat").correction["id"] == c.id
    index.close()


def test_an_unknown_answer_id_is_reported_without_the_password(pg_collection):
    from rag import Assistant, Config
    from rag.errors import RagError

    if "://postgres:@" not in pg_collection:
        pytest.skip("the throwaway server's trust login, where any password is accepted")
    secret = pg_collection.replace("://postgres:@", "://postgres:S3cret-pw@")
    index = PgVectorIndex(secret)
    assistant = Assistant(Config(index=secret, embedding_model="fake-hash"), index=index, embedder=E, llm=None)
    for attempt in (lambda: assistant.feedback("0" * 32, good=True),
                    lambda: assistant.correct("x", answer_id="0" * 32),
                    lambda: assistant.correct(question="q?", same_as="nope")):
        with pytest.raises(RagError) as caught:
            attempt()
        assert "S3cret-pw" not in str(caught.value) and "postgres:***@" in str(caught.value), caught.value
    index.close()


def test_a_role_that_may_only_read_searches_and_reads_corrections(pg_collection):
    """No DDL for an index that is up to date, and a corrections store never written reads as
    empty without creating its tables: a role with USAGE and SELECT alone can serve answers."""
    import re
    import uuid

    import psycopg

    from indexes.corrections import Correction, PgCorrectionStore

    owner = PgVectorIndex(pg_collection)
    write_chunks(owner, E, {"a.md": chunks("a.md", "alpha")})
    conninfo, schema = split_location(pg_collection)
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'readpw'")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    as_reader = re.sub(r"://[^@/]*@", f"://{role}:readpw@", pg_collection, count=1)
    assert as_reader != pg_collection
    reader = PgVectorIndex(as_reader)
    assert reader.count() == 1 and reader.info() is not None
    assert reader.search(E.embed_query("alpha"), 1)[0].chunk.path == "a.md"
    store = PgCorrectionStore(reader)
    assert store.list() == [] and store.nearest(E.embed_query("alpha")) == [] and store.get_meta("matcher") is None
    with psycopg.connect(conninfo) as conn:  # still no corrections tables: the reader created none
        assert conn.execute("SELECT to_regclass(%s)", (f"{schema}.corrections",)).fetchone()[0] is None

    written = PgCorrectionStore(owner)
    written.add(Correction("What is alpha?", "The first letter.", model="fake-hash"), E.embed_query("alpha"))
    from indexes.errors import RagError

    with pytest.raises(RagError, match="ALTER DEFAULT PRIVILEGES"):  # tables made after the grant: said, no traceback
        store.list()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
    assert [c.question for c in store.list()] == ["What is alpha?"]
    assert store.nearest(E.embed_query("alpha"), 1)[0][0].answer == "The first letter."
    reader.close(), owner.close()


def test_a_cancelled_statement_keeps_the_pool(pg_collection):
    from indexes.errors import IndexWriteError

    index = PgVectorIndex(pg_collection)
    write_chunks(index, E, {"a.md": chunks("a.md", "alpha")})
    pool = index.pool
    with pytest.raises(IndexWriteError, match="ended the statement"):
        with index._conn() as conn:
            conn.execute("SET statement_timeout = 10")
            conn.execute("SELECT pg_sleep(1)")
    assert index.pool is pool and index.count() == 1  # the server is there: no reconnecting
    index.close()
