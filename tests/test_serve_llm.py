"""`rag serve-llm` (llama.cpp's OpenAI-compatible server) and the client that talks to it."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.llm import Completion, OpenAIChat

pytestmark = pytest.mark.integration
RAG = str(Path(sys.executable).with_name("rag"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    port = free_port()
    proc = subprocess.Popen([RAG, "serve-llm", "--port", str(port), "--name", "smollm2", "--n-ctx", "2048"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("rag serve-llm did not come up: " + (proc.stderr.read() if proc.stderr else ""))
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_streaming_chat_through_the_openai_compatible_server(served):
    chat = OpenAIChat(served, "smollm2", timeout=60)
    items = list(chat.stream([{"role": "user", "content": "Say hello in three words."}], max_tokens=16))
    assert isinstance(items[-1], Completion) and items[-1].text == "".join(items[:-1]) and items[-1].text.strip()
    assert len(items) > 2  # it really streamed


def test_rag_ask_through_the_endpoint(docs, served, ray_local):
    from rag import Assistant, Config

    assistant = Assistant(Config(index="idx", llm_base_url=served, llm_model="smollm2", llm_max_tokens=32))
    assistant.ingest(["docs"])
    answer = assistant.ask("How do I upgrade Wombat?")
    assert answer.model == "smollm2" and answer.text.strip() and answer.error is None
    assert answer.retrieved and answer.usage.completion_tokens > 0 and answer.cost_usd == 0.0


def test_a_wrong_model_name_is_a_clear_error(served):
    from rag.errors import LLMError

    chat = OpenAIChat(served.replace("/v1", "/nope"), "smollm2", timeout=10, max_retries=0)
    with pytest.raises(LLMError, match="404"):
        chat.complete([{"role": "user", "content": "hi"}])
