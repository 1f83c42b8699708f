"""The HTTP app (rag.server) on fakes, through FastAPI's test client: every route, the limits
and the admin token. The same app on Ray Serve with the real models: test_serve_ray.py."""

import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from indexes import Chunk  # noqa: E402
from indexes.faiss_index import FaissIndex  # noqa: E402
from pipelines.embed import HashEmbedder  # noqa: E402
from rag import Assistant, Config  # noqa: E402
from rag.llm import ScriptedChat  # noqa: E402
from rag.server import PUBLIC_LLM_ERROR, RateLimiter, ServerState, create_app  # noqa: E402
from tests.conftest import write_chunks  # noqa: E402

E = HashEmbedder()
TOKEN = "s3cret-admin-token-0123456789"
CONV = "conv-0123456789abcdef"


@pytest.fixture
def index(tmp_path):
    idx = FaissIndex(tmp_path / "idx")
    write_chunks(idx, E, {
        "docs/upgrade.md": [Chunk("docs/upgrade.md", "To upgrade wombat run wombat self-update", 0, "Wombat",
                                  ("Wombat", "Upgrading"), "upgrading", "https://docs.example/upgrade.html")],
        "docs/storage.md": [Chunk("docs/storage.md", "The glacier backend retries uploads five times", 0, "Storage",
                                  ("Storage",), "storage")],
    })
    return idx


def make_client(index, reply="Run wombat self-update [1].", rewrite="how do I upgrade wombat", **config):
    settings = dict(embedding_model="fake-hash", serve_rate_limit=0)
    settings.update(config)
    cfg = Config(**settings)
    assistant = Assistant(cfg, index=index, embedder=E, llm=ScriptedChat(reply),
                          job_llms={"rewrite": ScriptedChat(rewrite, name="rewriter")})
    return TestClient(create_app(ServerState(cfg, assistant, warm_up=False)))


def sse(text):
    events = []
    for block in text.strip().split("\n\n"):
        if block.startswith(":"):  # a comment: the stream's opening keep-alive
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines.get("event", "message"), lines["data"]))
    return events


def test_ask_returns_the_answer_object_of_rag_ask_json(index):
    r = make_client(index).post("/v1/ask", json={"question": "how to upgrade wombat"})
    assert r.status_code == 200
    body = r.json()
    assert body["answer"] == "Run wombat self-update [1]."
    assert body["sources"][0]["url"] == "https://docs.example/upgrade.html" and body["sources"][0]["cited"]
    assert {"id", "question", "retrieved", "usage", "latency_ms", "model", "prompt", "cost_usd", "correction"} <= set(body)


def test_stream_sends_deltas_then_the_final_answer(index):
    r = make_client(index).post("/v1/ask/stream", json={"question": "how to upgrade wombat"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert [e for e, _ in events[:-1]] == ["delta"] * (len(events) - 1) and events[-1][0] == "answer"
    text = "".join(json.loads(d)["text"] for e, d in events if e == "delta")
    final = json.loads(events[-1][1])
    assert text == final["answer"] and final["sources"][0]["path"] == "docs/upgrade.md"


def test_follow_up_in_a_conversation_is_rewritten_and_keeps_clean_sources(index):
    client = make_client(index)
    first = client.post("/v1/ask", json={"question": "what does glacier retry", "conversation_id": CONV}).json()
    follow = client.post("/v1/ask", json={"question": "and how do I upgrade it?", "conversation_id": CONV}).json()
    assert first["conversation_id"] == follow["conversation_id"] == CONV
    assert follow["question"] == "how do I upgrade wombat"  # the rewrite call's standalone question
    direct = client.post("/v1/ask", json={"question": "how do I upgrade wombat"}).json()
    # retrieval saw only the standalone question: the same sources as asking it directly
    assert [s["path"] for s in follow["retrieved"]] == [s["path"] for s in direct["retrieved"]]
    paths = [s["path"] for s in follow["retrieved"]]
    assert len(paths) == len(set(paths))


def test_feedback_is_recorded_and_unknown_answers_are_404(index):
    client = make_client(index)
    answer = client.post("/v1/ask", json={"question": "glacier"}).json()
    assert client.post("/v1/feedback", json={"answer_id": answer["id"], "good": False, "comment": "wrong"}).json() == {"ok": True}
    assert client.post("/v1/feedback", json={"answer_id": "0" * 32, "good": True}).status_code == 404
    assert client.post("/v1/feedback", json={"answer_id": "../../etc", "good": True}).status_code == 422


def test_corrections_routes_are_off_without_a_token(index):
    client = make_client(index)
    assert client.get("/v1/corrections").status_code == 404
    assert client.get("/v1/corrections/suggestions").status_code == 404
    assert client.post("/v1/corrections", json={"question": "q", "answer": "a"}).status_code == 404
    assert client.get("/v1/feedback").status_code == 404 and client.get("/v1/feedback/open").status_code == 404
    assert client.get("/review").status_code == 404  # the reviewers' page too


def test_review_page_lists_answers_marked_wrong_until_a_reviewer_corrects_them(index, monkeypatch):
    """What the reviewers' page (/review) reads and writes, through the admin routes."""
    client = make_client(index, serve_admin_token=TOKEN)
    page = client.get("/review")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    head = page.text.split("<body")[0]
    assert '<script src="/static/review.js"' in head and "http" not in head
    assert client.get("/static/review.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/review.html").status_code == 404  # a page only at its route
    auth = {"Authorization": f"Bearer {TOKEN}"}
    good = client.post("/v1/ask", json={"question": "what is a glacier"}).json()
    bad = client.post("/v1/ask", json={"question": "how to upgrade wombat"}).json()
    worse = client.post("/v1/ask", json={"question": "where are glacier uploads kept"}).json()
    client.post("/v1/feedback", json={"answer_id": good["id"], "good": True})
    client.post("/v1/feedback", json={"answer_id": bad["id"], "good": False, "comment": "that flag is gone"})
    client.post("/v1/feedback", json={"answer_id": worse["id"], "good": False})
    assert client.get("/v1/feedback/open").status_code == 401 and client.get("/v1/feedback").status_code == 401
    everything = client.get("/v1/feedback", headers=auth)
    assert everything.headers["cache-control"] == "no-store"
    assert [f["answer_id"] for f in everything.json()["feedback"]] == [worse["id"], bad["id"], good["id"]]  # newest first
    assert [f["answer_id"] for f in client.get("/v1/feedback?bad=true&limit=1", headers=auth).json()["feedback"]] == [
        worse["id"]]
    waiting = client.get("/v1/feedback/open", headers=auth).json()["feedback"]
    assert [(f["answer_id"], f["question"], f["comment"], f["reports"]) for f in waiting] == [
        (worse["id"], "where are glacier uploads kept", None, 1), (bad["id"], "how to upgrade wombat", "that flag is gone", 1)]
    made = client.post("/v1/corrections", headers=auth, json={"answer_id": bad["id"], "answer": "Use --all.", "author": "ana"})
    assert made.status_code == 201 and made.json()["overlaps"] == []  # no other correction answers it differently
    assert [f["answer_id"] for f in client.get("/v1/feedback/open", headers=auth).json()["feedback"]] == [worse["id"]]
    assert client.get("/v1/feedback/open?limit=0", headers=auth).status_code == 422
    nameless = client.post("/v1/corrections", headers=auth, json={"answer_id": worse["id"], "answer": "In S3.", "author": ""})
    assert nameless.status_code == 422
    from rag.errors import ConflictError

    def conflict(*args, **kwargs):
        raise ConflictError("Another reviewer (bo) linked this question same_as correction x at the same moment")

    with monkeypatch.context() as patch:  # another reviewer's contrary link won at the same moment: 409, with who
        patch.setattr(Assistant, "correct", conflict)
        clash = client.post("/v1/corrections", headers=auth, json={"answer_id": worse["id"], "not_same_as": made.json()["id"]})
    assert clash.status_code == 409 and "Another reviewer (bo)" in clash.json()["error"]

    def broken(*args, **kwargs):
        raise RuntimeError("store went away")

    with monkeypatch.context() as patch:  # the write succeeded: a failed overlap check only informs
        patch.setattr(Assistant, "overlaps_of", broken)
        written = client.post("/v1/corrections", headers=auth, json={"question": "how do i list glaciers", "answer": "ls."})
    assert written.status_code == 201 and written.json()["overlaps"] is None
    assert client.get("/v1/corrections/overlaps").status_code == 401
    assert client.get("/v1/corrections/overlaps", headers=auth).json() == {"overlaps": []}  # as `rag corrections overlaps`
    from indexes.corrections import SqliteCorrectionStore

    store = SqliteCorrectionStore(index.location)  # as `rag ingest` flags it when a cited file changes
    store.update(made.json()["id"], review="docs/upgrade.md changed")
    store.close()
    enabled = client.post(f"/v1/corrections/{made.json()['id']}/enable", headers=auth).json()
    assert enabled["active"] is True and enabled["review"] is None  # checked: as `rag corrections enable`


def test_corrections_need_the_bearer_token_and_then_override_answers(index):
    client = make_client(index, serve_admin_token=TOKEN)
    assert client.get("/v1/corrections").status_code == 401
    assert client.get("/v1/corrections", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/corrections", headers={"Authorization": TOKEN}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = client.post("/v1/ask", json={"question": "how to upgrade wombat"}).json()
    made = client.post("/v1/corrections", headers=auth,
                       json={"answer_id": bad["id"], "answer": "Use wombat upgrade --all.", "author": "ana"})
    assert made.status_code == 201
    fixed = client.post("/v1/ask", json={"question": "how to upgrade wombat"}).json()
    assert fixed["answer"] == "Use wombat upgrade --all." and fixed["correction"]["author"] == "ana"
    cid = made.json()["id"]
    missed = client.post("/v1/ask", json={"question": "what is the procedure to bring wombat to the newest version"}).json()
    assert missed["correction"] is None
    assert client.get("/v1/corrections/suggestions").status_code == 401
    assert client.get("/v1/corrections/suggestions?limit=0", headers=auth).status_code == 422
    from indexes.corrections import SqliteCorrectionStore

    store = SqliteCorrectionStore(index.location)  # a matcher that turns everything down, for a known queue
    store.set_meta("matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    queue = client.get("/v1/corrections/suggestions?scan=50&min_similarity=-1", headers=auth).json()["suggestions"]
    assert [(s["answer_id"], s["correction_id"]) for s in queue] == [(missed["id"], cid)]
    store.set_meta("matcher", None)  # back to the default
    store.close()
    link = client.post("/v1/corrections", headers=auth, json={"answer_id": missed["id"], "same_as": cid})
    assert link.status_code == 201 and link.json()["same_as"] == cid
    linked = client.post("/v1/ask", json={"question": "What is the procedure to bring Wombat to the newest version?"}).json()
    assert linked["correction"]["id"] == cid and linked["answer"] == "Use wombat upgrade --all."
    assert client.post("/v1/corrections", headers=auth, json={"question": "q"}).status_code == 400
    for unknown in ({"answer_id": missed["id"], "same_as": "nosuch"}, {"answer_id": "0" * 32, "answer": "x"}):
        gone = client.post("/v1/corrections", headers=auth, json=unknown)  # 404, naming no path
        assert gone.status_code == 404 and str(index.location) not in gone.text, gone.text
    assert client.post(f"/v1/corrections/{cid}/disable", headers=auth).json()["active"] is False
    assert client.post("/v1/ask", json={"question": "how to upgrade wombat"}).json()["correction"] is None
    listed = client.get("/v1/corrections", headers=auth).json()["corrections"]
    assert sorted(c["id"] for c in listed) == sorted([cid, link.json()["id"]])
    assert client.post("/v1/corrections/nope/enable", headers=auth).status_code == 404


def test_chat_completions_facade(index):
    client = make_client(index)
    r = client.post("/v1/chat/completions", json={
        "model": "rag", "messages": [{"role": "system", "content": "be nice"},
                                     {"role": "user", "content": "how to upgrade wombat"}]})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Run wombat self-update [1]."}
    assert body["usage"]["total_tokens"] > 0 and body["rag"]["sources"][0]["path"] == "docs/upgrade.md"
    assert client.get("/v1/models").json()["data"][0]["id"] == "rag"


def test_chat_completions_stream_ends_with_sources_and_done(index):
    r = make_client(index).post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": [{"type": "text", "text": "how to upgrade wombat"}]}], "stream": True})
    lines = [line[len("data: "):] for line in r.text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Run wombat self-update [1]."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["rag"]["sources"]


def test_chat_completions_uses_earlier_turns_as_history(index):
    r = make_client(index).post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "what does glacier retry"}, {"role": "assistant", "content": "uploads"},
        {"role": "user", "content": "and upgrading?"}]})
    assert r.json()["rag"]["question"] == "how do I upgrade wombat"
    r = make_client(index).post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert r.status_code == 422


def test_limits_size_length_and_rate(index):
    client = make_client(index, serve_max_request_kb=1, serve_max_question_chars=50, serve_rate_limit=3)
    assert client.post("/v1/ask", content=b'{"question": "' + b"x" * 2000 + b'"}',
                       headers={"Content-Type": "application/json"}).status_code == 413

    def chunked():
        yield b'{"question": "'
        yield b"y" * 2000
        yield b'"}'
    assert client.post("/v1/ask", content=chunked(), headers={"Content-Type": "application/json"}).status_code == 413
    too_long = client.post("/v1/ask", json={"question": "z" * 51})
    assert too_long.status_code == 422 and "50 characters" in too_long.json()["error"]
    assert client.post("/v1/ask", json={"question": "   "}).status_code == 422
    assert client.post("/v1/ask", json={"question": "glacier", "extra": 1}).status_code == 422
    # 3 per minute: the two over-long/blank questions above used two; schema errors use none
    codes = [client.post("/v1/ask", json={"question": "glacier"}).status_code for _ in range(3)]
    assert codes == [200, 429, 429]
    limited = client.post("/v1/ask", json={"question": "glacier"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert client.get("/healthz").status_code == 200  # health checks are never limited


def test_rate_limiter_refills_and_forgets_idle_clients():
    limiter = RateLimiter(60, max_clients=2)
    assert limiter.take("a") == 0.0
    for _ in range(59):
        limiter.take("a")
    assert 0 < limiter.take("a") <= 1.0
    assert RateLimiter(0).take("a") == 0.0
    for client in "bcdefgh":
        limiter.take(client)
    assert list(limiter._buckets) == ["g", "h"]  # bounded: the least recently seen are forgotten


def test_page_assets_and_headers(index):
    client = make_client(index)
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/chat.js"' in page.text and "http" not in page.text.split("<body>")[0].replace("http-equiv", "")
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert client.get("/static/chat.js").headers["content-type"].startswith("text/javascript")
    for probe in ["/static/../server.py", "/static/%2e%2e%2fserver.py", "/static/index.html", "/static/etc/passwd"]:
        assert client.get(probe).status_code == 404, probe
    assert "access-control-allow-origin" not in client.options(
        "/v1/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}).headers


def test_cors_only_for_configured_origins(index):
    client = make_client(index, serve_cors_origins=["https://docs.example"])
    ok = client.options("/v1/ask", headers={"Origin": "https://docs.example", "Access-Control-Request-Method": "POST"})
    assert ok.headers["access-control-allow-origin"] == "https://docs.example"
    other = client.options("/v1/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


def test_llm_failure_returns_sources_with_502(index):
    from rag.errors import LLMError
    from rag.llm import ChatModel

    class Down(ChatModel):
        name = "down"

        def stream(self, messages, **kwargs):
            raise LLMError("endpoint unreachable")
            yield  # pragma: no cover

    cfg = Config(embedding_model="fake-hash", serve_rate_limit=0)
    client = TestClient(create_app(ServerState(cfg, Assistant(cfg, index=index, embedder=E, llm=Down()), warm_up=False)))
    r = client.post("/v1/ask", json={"question": "glacier"})
    assert r.status_code == 502 and r.json()["sources"]
    assert r.json()["error"] == PUBLIC_LLM_ERROR  # upstream details stay in the log
    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "glacier"}]})
    assert chat.status_code == 502 and chat.json()["error"]["message"] == PUBLIC_LLM_ERROR
    assert chat.headers["x-should-retry"] == "false"
    streamed = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "glacier"}],
                                                          "stream": True}).text
    assert '"error": {"message": "' + PUBLIC_LLM_ERROR in streamed and streamed.endswith("data: [DONE]\n\n")


def test_healthz_and_missing_index(tmp_path, index):
    assert make_client(index).get("/healthz").json()["chunks"] == 2
    empty = make_client(FaissIndex(tmp_path / "none"))
    assert empty.get("/healthz").status_code == 503
    r = empty.post("/v1/ask", json={"question": "anything"})
    assert r.status_code == 503 and "reference" in r.json()["error"]
    assert str(tmp_path) not in r.text  # no server paths (or database URLs) to the public


def test_admin_token_is_not_in_the_config_dump_or_logs(index, caplog):
    caplog.set_level("INFO", logger="rag.server")
    client = make_client(index, serve_admin_token=TOKEN)
    client.get("/v1/corrections", headers={"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in json.dumps(Config(serve_admin_token=TOKEN).to_dict())
    assert TOKEN not in caplog.text and "GET /v1/corrections 200" in caplog.text


def test_blank_token_keeps_admin_off_and_short_tokens_are_refused(index):
    client = make_client(index, serve_admin_token="  ")
    assert client.get("/v1/corrections", headers={"Authorization": "Bearer"}).status_code == 404
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="too short"):
        make_client(index, serve_admin_token="short")


def test_conversation_ids_must_be_unguessable(index):
    r = make_client(index).post("/v1/ask", json={"question": "glacier", "conversation_id": "c1"})
    assert r.status_code == 422 and "conversation_id" in r.json()["error"]


def test_openai_routes_answer_errors_in_openai_shape(index):
    client = make_client(index)
    bad = client.post("/v1/chat/completions", json={"messages": []})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_request_error"
    tool = client.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "glacier"}, {"role": "tool", "content": "x"}]})
    assert tool.status_code == 422
    assert client.get("/v1/nothing").json() == {"error": "Not Found"}
    assert client.post("/v1/models").json()["error"]["type"] == "invalid_request_error"  # 405


def test_other_host_names_are_refused_on_loopback(index):
    client = make_client(index)
    assert client.get("/healthz", headers={"Host": "rebind.attacker.example"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert make_client(index, serve_host="0.0.0.0").get("/healthz", headers={"Host": "docs.example"}).status_code == 200


def test_control_characters_are_stripped_from_feedback(index):
    client = make_client(index)
    answer = client.post("/v1/ask", json={"question": "glacier"}).json()
    client.post("/v1/feedback", json={"answer_id": answer["id"], "good": False, "comment": "bad\x1b[31m red\x07"})
    from indexes.corrections import SqliteCorrectionStore

    comments = [f.comment for f in SqliteCorrectionStore(index.directory).list_feedback()]
    assert comments == ["bad[31m red"]


def test_a_client_that_goes_away_mid_stream_releases_the_model(index):
    """The stream's generator is closed when the client disconnects, not when the garbage
    collector gets to it: the local model's lock is free for the next request at once."""
    import asyncio
    import gc
    import threading

    from rag.llm import ChatModel, Completion

    lock = threading.Lock()
    closed = []

    class Locked(ChatModel):
        name = "locked"

        def stream(self, messages, **kwargs):
            with lock:
                try:
                    for word in ["one ", "two ", "three ", "four "] * 20:
                        yield word
                    yield Completion("x", 1, 1, self.name)
                finally:
                    closed.append(True)

    cfg = Config(embedding_model="fake-hash", serve_rate_limit=0)
    app = create_app(ServerState(cfg, Assistant(cfg, index=index, embedder=E, llm=Locked()), warm_up=False))
    body = json.dumps({"question": "glacier"}).encode()

    async def disconnecting_client():
        sent = []

        async def receive():
            if not sent:
                sent.append(1)
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)

        async def send(message):
            if message["type"] == "http.response.body" and b"delta" in message.get("body", b""):
                raise OSError("client went away")

        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/v1/ask/stream", "raw_path": b"/v1/ask/stream",
                 "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5),
                 "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}
        try:
            await app(scope, receive, send)
        except OSError:
            pass

    gc.disable()
    try:
        asyncio.run(disconnecting_client())
        assert closed and not lock.locked()
    finally:
        gc.enable()


def test_answers_say_whether_feedback_can_be_given(index):
    """The page shows the feedback buttons only when answers are logged (feedback needs the log)."""
    assert make_client(index).post("/v1/ask", json={"question": "upgrade wombat"}).json()["feedback"] is True
    quiet = make_client(index, log_answers=False)
    body = quiet.post("/v1/ask", json={"question": "upgrade wombat"}).json()
    assert body["feedback"] is False
    assert quiet.post("/v1/feedback", json={"answer_id": body["id"], "good": True}).status_code == 404


def test_a_waiting_stream_sends_heartbeats(index):
    """A request queued behind others (or a slow first token) keeps its stream alive with SSE
    comments, which clients ignore."""
    import time as _time

    client = make_client(index, serve_heartbeat_s=0.05)
    real_stream = type(ScriptedChat()).stream

    def slow(self, messages, **kwargs):
        _time.sleep(0.4)  # waiting for the model
        yield from real_stream(self, messages, **kwargs)

    from unittest import mock

    with mock.patch.object(ScriptedChat, "stream", slow):
        r = client.post("/v1/ask/stream", json={"question": "how to upgrade wombat"})
    assert r.status_code == 200
    assert r.text.count(": keep-alive") >= 3
    events = sse(r.text)
    assert [e for e, _ in events][-1] == "answer"
    assert "".join(json.loads(d)["text"] for e, d in events if e == "delta") == "Run wombat self-update [1]."


def test_heartbeats_pass_items_and_failures_through_and_close_the_source():
    from rag.server import HEARTBEAT, with_heartbeats

    closed = []

    def source(fail=False):
        try:
            yield "a"
            yield "b"
            if fail:
                raise RuntimeError("boom")
        finally:
            closed.append(True)

    assert [x for x in with_heartbeats(source(), 1.0) if x != HEARTBEAT] == ["a", "b"] and closed
    with pytest.raises(RuntimeError, match="boom"):
        list(with_heartbeats(source(fail=True), 1.0))
    assert list(with_heartbeats(source(), 0)) == ["a", "b"]  # off: the source as it is

    started = []

    def endless():
        try:
            while True:
                started.append(1)
                yield "x"
        finally:
            closed.append("endless")

    stream = with_heartbeats(endless(), 1.0)
    assert next(stream) == "x"
    stream.close()  # the client left: the source is closed in its thread
    import time as _time

    deadline = _time.monotonic() + 5
    while "endless" not in closed and _time.monotonic() < deadline:
        _time.sleep(0.01)
    assert "endless" in closed


def test_the_asker_confirms_the_correction_an_answer_offers(index):
    """/v1/feedback/confirm, open like feedback: the answer that named related corrections,
    and that correction, give its answer (as /v1/ask would); anything else is refused."""
    client = make_client(index, serve_admin_token=TOKEN, corrections_offers=1)
    # a matcher that turns every pair down (p = 0.5), so that the correction is offered, not applied
    Assistant(Config(embedding_model="fake-hash"), index=index, embedder=E).corrections.set_meta(
        "matcher", {"band": 0.0, "accept": 1.0, "p_min": 0.999, "weights": [0.0] * 6})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    c = client.post("/v1/corrections", json={"question": "how do I upgrade wombat", "answer": "Run wombat self-update."},
                    headers=auth).json()
    asked = client.post("/v1/ask", json={"question": "what is the procedure to bring wombat to its newest release"}).json()
    [offer] = asked["related_corrections"]
    assert asked["correction"] is None and offer["id"] == c["id"] and offer["question"] == "how do I upgrade wombat"
    wrong = client.post("/v1/feedback/confirm", json={"answer_id": asked["id"], "correction_id": "nope"})
    assert wrong.status_code == 409 and "not one offered" in wrong.json()["error"]
    unrelated = client.post("/v1/corrections", json={"question": "zzz qqq", "answer": "no"}, headers=auth).json()
    assert client.post("/v1/feedback/confirm", json={"answer_id": asked["id"], "correction_id": unrelated["id"]}
                       ).status_code == 409  # it exists, but is not offered for that question
    assert client.post("/v1/feedback/confirm", json={"answer_id": "0" * 32, "correction_id": c["id"]}).status_code == 404
    assert client.post("/v1/feedback/confirm", json={"answer_id": "../x", "correction_id": c["id"]}).status_code == 422
    got = client.post("/v1/feedback/confirm", json={"answer_id": asked["id"], "correction_id": c["id"]})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["answer"] == "Run wombat self-update." and body["correction"]["confirmed_by_asker"] is True
    assert body["correction"]["link_pending"] is True and body["feedback"] is True
    queue = client.get("/v1/corrections/suggestions", headers=auth).json()["suggestions"]
    assert queue[0]["answer_id"] == asked["id"] and queue[0]["confirmed_by_asker"] is True
