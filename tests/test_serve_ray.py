"""`rag serve` for real: Ray Serve, MiniLM, the SmolLM2 model, over HTTP on loopback, and the
chat page in headless Chromium (Debian's chromium, driven by playwright-core from npm;
scripts/test.sh installs both and sets RAG_REQUIRE_BROWSER=1 so that CI cannot skip it)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BROWSER_DIR, FIXTURES, browser_node

pytestmark = pytest.mark.integration
pytest.importorskip("ray.serve")

RAG = str(Path(sys.executable).with_name("rag"))
TOKEN = "test-admin-token-0123456789"
SOURCE_URL = "https://docs.example/{path}.html"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve")
    index = str(work / "idx")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_LLM_MAX_TOKENS": "48",
           "RAG_SERVE_ADMIN_TOKEN": TOKEN, "RAG_SERVE_RATE_LIMIT": "0", "RAG_SERVE_HEARTBEAT_S": "0.5"}
    subprocess.run([RAG, "ingest", str(FIXTURES / "docs"), "--index", index, "--source-url", SOURCE_URL],
                   check=True, capture_output=True, env=env, cwd=work, timeout=600)
    port = free_port()
    log = open(work / "serve.log", "w")
    proc = subprocess.Popen([RAG, "serve", "--index", index, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=work, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rag serve exited {proc.returncode}:\n{(work / 'serve.log').read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        proc.kill()
        raise AssertionError("rag serve did not become healthy:\n" + (work / "serve.log").read_text())
    yield {"url": url, "index": index, "env": env, "work": work, "proc": proc, "port": port}
    proc.send_signal(signal.SIGTERM)  # as systemd and `docker stop` do: the same clean stop as Ctrl-C
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()
    stopped = (work / "serve.log").read_text()
    assert proc.returncode == 0 and "Stopping." in stopped and "SIGTERM received" not in stopped, stopped[-3000:]


def post(served, path, body, **kwargs):
    return httpx.post(served["url"] + path, json=body, timeout=300, **kwargs)


def test_health_and_ask(served):
    assert httpx.get(served["url"] + "/healthz").json()["status"] == "ok"
    r = post(served, "/v1/ask", {"question": "How many times are glacier uploads retried?"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["answer"].strip() and answer["model"] and answer["retrieved"]
    assert all(s["url"].startswith("https://docs.example/") for s in answer["sources"])
    assert set(answer["latency_ms"]) >= {"retrieve", "llm", "total"}


def test_stream_sends_text_as_it_is_generated(served):
    with httpx.stream("POST", served["url"] + "/v1/ask/stream", json={"question": "How do I upgrade Wombat?"},
                      timeout=300) as r:
        blocks = [b for b in "".join(r.iter_text()).strip().split("\n\n") if not b.startswith(":")]
    events = [b.split("\n", 1)[0].removeprefix("event: ") for b in blocks]
    assert events.count("delta") >= 2 and events[-1] == "answer"
    final = json.loads(blocks[-1].split("data: ", 1)[1])
    deltas = "".join(json.loads(b.split("data: ", 1)[1])["text"] for b in blocks[:-1])
    assert deltas == final["answer"] and final["sources"]


def test_a_stream_queued_behind_another_keeps_alive(served):
    """The local model answers one request at a time: the second stream waits, and says so
    with SSE comments every serve_heartbeat_s instead of going silent."""
    from concurrent.futures import ThreadPoolExecutor

    def stream(question):
        with httpx.stream("POST", served["url"] + "/v1/ask/stream", json={"question": question}, timeout=300) as r:
            return "".join(r.iter_text())

    with ThreadPoolExecutor(2) as pool:
        raw = list(pool.map(stream, ["How do I upgrade Wombat?", "How many times are glacier uploads retried?"]))
    assert any(": keep-alive" in text.split("event: delta", 1)[0] for text in raw)
    assert all("event: answer" in text for text in raw)


def test_follow_up_is_rewritten_and_keeps_clean_sources(served):
    first = post(served, "/v1/ask", {"question": "How many times are glacier uploads retried?", "conversation_id": "conversation-0001"}).json()
    follow = post(served, "/v1/ask", {"question": "And which backend is the default?", "conversation_id": "conversation-0001"}).json()
    assert follow["conversation_id"] == "conversation-0001" and "rewrite" in follow["latency_ms"]
    assert follow["question"].strip() and first["id"] != follow["id"]
    from rag.assistant import _standalone

    # the bundled model's rewrite; or, when it is not a question, the follow-up as asked, retrieved
    # and answered together with the question before it
    asked = "And which backend is the default?"
    assert _standalone(follow["question"], asked), follow["question"]
    searched = f"{first['question']} {asked}" if follow["question"] == asked else follow["question"]
    # the follow-up's sources are those of the question it was searched as, alone: none carried over
    direct = post(served, "/v1/ask", {"question": searched}).json()
    assert [s["path"] for s in follow["retrieved"]] == [s["path"] for s in direct["retrieved"]]
    paths = [s["path"] for s in follow["retrieved"]]
    assert len(paths) == len(set(paths))


def test_openai_clients_use_the_facade(served):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=served["url"] + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": "What does Wombat need to run?"}])
    assert reply.choices[0].message.content.strip() and reply.model_extra["rag"]["sources"]
    chunks = list(client.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "What does Wombat need to run?"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
    assert chunks[-1].model_extra["rag"]["sources"]

    from rag.llm import OpenAIChat  # rag's own strict client (needs [DONE]) too

    completion = OpenAIChat(served["url"] + "/v1", "rag").complete([{"role": "user", "content": "What does Wombat need to run?"}])
    assert completion.text.strip()


def test_corrections_admin_needs_the_token(served):
    assert httpx.get(served["url"] + "/v1/corrections").status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(served["url"] + "/v1/corrections", headers=auth).status_code == 200


def chat_in_browser(served, question, comment, shot):
    node = browser_node()
    result = subprocess.run([node, "chat_flow.mjs", served["url"] + "/", question, comment, str(shot)],
                            cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_chat_page_streams_cites_and_sends_feedback(served):
    seen = chat_in_browser(served, "How many times are glacier uploads retried?", "too vague", served["work"] / "chat.png")
    assert seen["updates_while_streaming"] >= 2, seen  # text appeared piece by piece
    assert seen["sources"] and seen["source_links"]
    assert all(link.startswith("https://docs.example/") for link in seen["source_links"])
    assert "can be wrong" in seen["notice"] and not seen["error"]
    assert set(seen["requests"]) == {served["url"].removeprefix("http://")}  # no CDN, nothing outside
    assert seen["console"] == []

    listed = subprocess.run([RAG, "feedback", "list", "--bad", "--json", "--index", served["index"]], capture_output=True,
                            text=True, env=served["env"], check=True).stdout
    mine = [f for f in json.loads(listed)["feedback"] if f["answer_id"] == seen["answer_id"]]
    assert mine and mine[0]["comment"] == "too vague" and mine[0]["good"] is False

    # a human correction for that answer shows up marked as such on the page
    auth = {"Authorization": f"Bearer {TOKEN}"}
    made = post(served, "/v1/corrections", {"answer_id": seen["answer_id"], "answer": "Glacier uploads are retried five times, then the run fails.",
                                            "author": "ops"}, headers=auth)
    assert made.status_code == 201, made.text
    again = chat_in_browser(served, "How many times are glacier uploads retried?", "ok", served["work"] / "corrected.png")
    assert again["text"] == "Glacier uploads are retried five times, then the run fails."
    assert "human correction by ops" in again["correction"]


def test_review_page_corrects_a_wrong_answer_and_confirms_a_queued_question(served):
    """The reviewers' page in Chromium: a correction for an answer marked wrong, and "same
    question" for a rewording the matcher was unsure of; then both are answered by them."""
    node = browser_node()
    log, deadline = served["work"] / "serve.log", time.monotonic() + 60  # printed once `serve.run` returns
    while f"Reviewers' page: {served['url']}/review" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert f"Reviewers' page: {served['url']}/review" in log.read_text()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wrong = post(served, "/v1/ask", {"question": "Which backend retries uploads?"}).json()
    assert post(served, "/v1/feedback", {"answer_id": wrong["id"], "good": False,
                                         "comment": "vague <b>not bold</b>"}).status_code == 200
    known = post(served, "/v1/corrections", {"question": "How do I correct a wrong answer?", "author": "ops",
                                             "answer": "Run `rag correct ANSWER_ID --answer TEXT`."}, headers=auth).json()
    queued = post(served, "/v1/ask", {"question": "How can a wrong answer be corrected?"}).json()
    assert queued["correction"] is None  # the matcher is unsure of this rewording: the review queue has it
    corrected = "The glacier backend retries uploads, five times."
    result = subprocess.run([node, "review_flow.mjs", served["url"] + "/review", TOKEN, wrong["id"], corrected,
                             queued["id"], str(served["work"] / "review.png")],
                            cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["refused"] and "Which backend retries uploads?" in seen["wrong"]
    assert seen["comment"] == "“vague <b>not bold</b>”"  # shown as text, never as HTML
    assert seen["toggled"] == "Disable"  # disabled, then enabled again
    assert "How can a wrong answer be corrected?" in seen["queue"]
    assert seen["queued_correction"] == "How do I correct a wrong answer?"
    assert seen["saved"].startswith("Saved as correction") and seen["linked"].startswith("Linked")
    assert "Which backend retries uploads?" not in seen["wrong_after"]
    assert "How can a wrong answer be corrected?" not in seen["queue_after"]
    assert {"Which backend retries uploads?", "How do I correct a wrong answer?"} <= set(seen["corrections"])
    assert set(seen["requests"]) == {served["url"].removeprefix("http://")}
    assert all("401 (Unauthorized)" in line for line in seen["console"])  # the wrong token's requests, only
    again = post(served, "/v1/ask", {"question": "Which backend retries uploads?"}).json()
    assert again["answer"] == corrected and again["correction"]["author"] == "rita"
    linked = post(served, "/v1/ask", {"question": "How can a wrong answer be corrected?"}).json()
    assert linked["correction"]["id"] == known["id"]


def test_bounded_load_has_no_errors_and_no_memory_growth(served):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from benchmarks.load import rss_mb, run_load

    replicas = [int(p) for p in subprocess.run(["pgrep", "-f", "ServeReplica:rag"], capture_output=True,
                                               text=True).stdout.split()]
    assert replicas, "no Ray Serve replica process found"
    warm = run_load(served["url"], clients=8, duration=8)
    before = rss_mb(replicas)
    report = run_load(served["url"], clients=8, duration=20, stream=True)
    after = rss_mb(replicas)
    (served["work"] / "load.json").write_text(json.dumps({"warm": warm, "load": report, "rss": [before, after]}))
    assert warm["errors"] == 0 and report["errors"] == 0, report
    assert report["answers"] >= 8
    assert after - before < 100, (before, after)  # MiB; no growth beyond allocator noise


def test_serve_refuses_an_empty_index(tmp_path):
    result = subprocess.run([RAG, "serve", "--index", str(tmp_path / "nothing")], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1 and "rag ingest" in result.stderr and "Traceback" not in result.stderr


def test_serve_on_a_taken_port_says_so_in_one_line(served):
    result = subprocess.run([RAG, "serve", "--index", served["index"], "--port", str(served["port"])],
                            capture_output=True, text=True, timeout=120, env=served["env"])
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: Port {served['port']} on 127.0.0.1 is in use (another server?); pick another with --port.")
    assert "Traceback" not in result.stderr


def test_serve_runs_without_a_network(served, tmp_path):
    """`rag serve` and a question to it, all inside a network namespace with only loopback."""
    from tests.test_cli import OFFLINE

    if not OFFLINE:
        pytest.skip("needs root and unshare for a network namespace")
    port = free_port()
    script = (f'{RAG} serve --index "{served["index"]}" --port {port} > "{tmp_path}/serve.log" 2>&1 & pid=$!; '
              f'for i in $(seq 1 120); do sleep 1; curl -sf localhost:{port}/healthz > /dev/null && break; done; '
              f'curl -s -m 120 localhost:{port}/v1/ask -H "content-type: application/json" '
              f'-d \'{{"question": "How do I upgrade Wombat?"}}\' > "{tmp_path}/answer.json"; '
              f'kill -TERM $pid; for i in $(seq 1 40); do kill -0 $pid 2>/dev/null || break; sleep 0.5; done; '
              f'kill -KILL $pid 2>/dev/null; true')
    subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && {script}"], env=served["env"], timeout=400,
                   start_new_session=True)
    answer = json.loads((tmp_path / "answer.json").read_text() or "{}")
    assert answer.get("answer", "").strip(), (tmp_path / "serve.log").read_text()[-2000:]
