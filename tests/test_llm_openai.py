import socket
import time

import pytest

from rag.errors import LLMError
from rag.llm import Completion, OpenAIChat
from tests.fault_server import FaultServer

MESSAGES = [{"role": "user", "content": "hi"}]


def client(url, **kw):
    kw.setdefault("backoff", 0.01)
    return OpenAIChat(url, "test-model", api_key="sk-test", timeout=kw.pop("timeout", 5), **kw)


def test_streams_deltas_then_completion_with_usage():
    with FaultServer([("ok", "Hello| world")]) as s:
        items = list(client(s.url).stream(MESSAGES, max_tokens=5))
    assert items[:2] == ["Hello", " world"]
    assert items[-1] == Completion("Hello world", 11, 2, "test-model")
    req = s.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "test-model"
    assert req["body"]["stream"] is True and req["auth"] == "Bearer sk-test"


def test_retries_429_honouring_retry_after_then_succeeds():
    with FaultServer([("status", 429, {"Retry-After": "0.2"}), ("ok", "fine")]) as s:
        started = time.perf_counter()
        c = client(s.url).complete(MESSAGES)
        waited = time.perf_counter() - started
    assert c.text == "fine" and len(s.requests) == 2 and waited >= 0.2


def test_gives_up_on_repeated_5xx_with_a_clear_error():
    with FaultServer([("status", 500)] * 3) as s:
        with pytest.raises(LLMError, match="failed after 3 attempts.*HTTP 500"):
            client(s.url, max_retries=2).complete(MESSAGES)


def test_wrong_model_or_path_is_not_retried():
    with FaultServer([("status", 404)]) as s:
        with pytest.raises(LLMError, match="404 for model 'test-model'.*llm_base_url"):
            client(s.url).complete(MESSAGES)
    assert len(s.requests) == 1


def test_bad_key_is_reported():
    with FaultServer([("status", 401)]) as s:
        with pytest.raises(LLMError, match="RAG_LLM_API_KEY"):
            client(s.url).complete(MESSAGES)


def test_malformed_json_is_an_error_not_a_crash():
    with FaultServer([("garbage",)]) as s:
        with pytest.raises(LLMError, match="malformed JSON"):
            client(s.url).complete(MESSAGES)


def test_timeout_then_clear_error():
    with FaultServer([("slow", 2), ("slow", 2)]) as s:
        with pytest.raises(LLMError, match="failed after 2 attempts"):
            client(s.url, timeout=0.3, max_retries=1).complete(MESSAGES)


def test_stream_cut_midway_is_a_clear_error():
    with FaultServer([("cut", "a|b|c|d|e|f|g|h")]) as s:
        with pytest.raises(LLMError, match="cut off mid-answer"):
            client(s.url, max_retries=2).complete(MESSAGES)
    assert len(s.requests) == 1  # text was already shown: not retried


def test_endpoint_down():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(LLMError, match=f"127.0.0.1:{port}.*failed after 2 attempts"):
        client(f"http://127.0.0.1:{port}/v1", max_retries=1).complete(MESSAGES)
