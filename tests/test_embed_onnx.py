"""The ONNX Runtime embedding backends: the registry and its fallbacks, the export cache
(atomic, exported once under concurrency), and, on the real bundled MiniLM, agreement
with PyTorch."""

import json
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from indexes.errors import ConfigError, MissingExtraError
from pipelines import onnx_embed
from pipelines.embed import AutoEmbedder, OnnxEmbedder, SentenceTransformerEmbedder, load_embedder
from rag import Assistant, Config

ROOT = Path(__file__).resolve().parent.parent


def fake_model(folder: Path, pooling: str = "mean", modules: list[str] | None = None) -> Path:
    """A sentence-transformers folder layout without real weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    kinds = modules or ["Transformer", "Pooling", "Normalize"]
    (folder / "modules.json").write_text(json.dumps([
        {"idx": i, "name": str(i), "path": "" if k == "Transformer" else f"{i}_{k}",
         "type": f"sentence_transformers.models.{k}"} for i, k in enumerate(kinds)
    ]))
    pool = folder / "1_Pooling"
    pool.mkdir(exist_ok=True)
    modes = {f"pooling_mode_{m}": m == {"mean": "mean_tokens", "cls": "cls_token"}[pooling]
             for m in ("mean_tokens", "cls_token", "max_tokens")}
    (pool / "config.json").write_text(json.dumps({"word_embedding_dimension": 8, **modes}))
    return folder


# -- the registry ----------------------------------------------------------------------------

def test_backend_setting_is_validated_and_threaded(monkeypatch):
    assert Config().embedding_backend == "auto"
    monkeypatch.setenv("RAG_EMBEDDING_BACKEND", "torch")
    config = Config.load()
    assert config.embedding_backend == "torch"
    assert Assistant(config).ingest_options().embedding_backend == "torch"
    with pytest.raises(ConfigError, match="embedding_backend"):
        Config.load(embedding_backend="int4")
    with pytest.raises(ConfigError, match="auto, torch, onnx, onnx-int8"):
        load_embedder.__wrapped__(backend="int4")


def test_registry_picks_the_backend_without_loading_anything():
    assert isinstance(load_embedder.__wrapped__(backend="torch"), SentenceTransformerEmbedder)
    assert isinstance(load_embedder.__wrapped__(backend="auto", device="cuda"), SentenceTransformerEmbedder)
    auto = load_embedder.__wrapped__(backend="auto")
    assert isinstance(auto, AutoEmbedder) and auto.backend == "auto"
    int8 = load_embedder.__wrapped__(backend="onnx-int8")
    assert isinstance(int8, OnnxEmbedder) and int8.backend == "onnx-int8" and int8.batch_size == 1
    fp32 = load_embedder.__wrapped__(backend="onnx", batch_size=16)
    assert fp32.backend == "onnx" and fp32.batch_size == 16
    with pytest.raises(ConfigError, match="runs on the CPU"):
        load_embedder.__wrapped__(backend="onnx-int8", device="cuda")
    assert load_embedder("fake-hash", backend="onnx-int8").backend == "fake"


def test_explicit_onnx_without_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setattr(onnx_embed, "missing_runtime", lambda: "onnxruntime")
    with pytest.raises(MissingExtraError, match=r"onnxruntime is not installed.*rag\[embed\]"):
        load_embedder.__wrapped__(backend="onnx-int8")


def test_auto_without_onnxruntime_falls_back_to_torch_and_says_so(monkeypatch, caplog):
    import pipelines.embed as embed

    monkeypatch.setattr(onnx_embed, "missing_runtime", lambda: "onnxruntime")
    monkeypatch.setattr(embed, "_cuda_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="pipelines.embed"):
        chosen = AutoEmbedder()._choose()
    assert isinstance(chosen, SentenceTransformerEmbedder) and chosen._model is None
    assert "embedding with PyTorch: onnxruntime is not installed" in caplog.text


def test_auto_takes_a_gpu_unless_told_cpu(monkeypatch, caplog):
    import pipelines.embed as embed

    monkeypatch.setattr(embed, "_cuda_available", lambda: True)
    monkeypatch.setattr(onnx_embed, "missing_runtime", lambda: "onnxruntime")
    with caplog.at_level(logging.INFO, logger="pipelines.embed"):
        on_gpu = AutoEmbedder()._choose()
        assert "PyTorch: a GPU is available" in caplog.text and on_gpu.device is None
        caplog.clear()
        on_cpu = AutoEmbedder(device="cpu")._choose()
        assert "a GPU" not in caplog.text and on_cpu.device == "cpu"


def test_auto_keeps_torch_for_models_the_export_cannot_reproduce(tmp_path, monkeypatch, caplog):
    import pipelines.embed as embed

    monkeypatch.setattr(embed, "_cuda_available", lambda: False)
    model = fake_model(tmp_path / "cls-model", pooling="cls")
    with caplog.at_level(logging.INFO, logger="pipelines.embed"):
        chosen = AutoEmbedder(str(model))._choose()
    assert isinstance(chosen, SentenceTransformerEmbedder)
    assert "pooling pooling_mode_cls_token" in caplog.text
    with pytest.raises(ConfigError, match="embedding_backend = 'torch'"):
        OnnxEmbedder(str(model), cache_dir=tmp_path / "cache").warm_up()
    assert not (tmp_path / "cache").exists()


def test_which_models_export(tmp_path):
    assert onnx_embed.unsupported_reason(fake_model(tmp_path / "mean")) is None
    assert "pooling" in onnx_embed.unsupported_reason(fake_model(tmp_path / "cls", pooling="cls"))
    dense = fake_model(tmp_path / "dense", modules=["Transformer", "Pooling", "Dense"])
    assert "Dense" in onnx_embed.unsupported_reason(dense)
    (tmp_path / "mean" / "model.safetensors").unlink()
    assert "no model.safetensors" in onnx_embed.unsupported_reason(tmp_path / "mean")


# -- the export cache ------------------------------------------------------------------------

def test_cache_key_follows_the_weights_and_the_name(tmp_path):
    model = fake_model(tmp_path / "m")
    key = onnx_embed.cache_key(model, "sentence-transformers/all-MiniLM-L6-v2")
    assert key.startswith("all-MiniLM-L6-v2-") and len(key.rsplit("-", 1)[1]) == 12
    assert onnx_embed.cache_key(model, "sentence-transformers/all-MiniLM-L6-v2") == key
    (model / "model.safetensors").write_bytes(b"other weights")
    assert onnx_embed.cache_key(model, "sentence-transformers/all-MiniLM-L6-v2") != key
    assert onnx_embed.cache_key(model, "/models/../odd name!").startswith("odd_name-")


def test_cache_root_follows_rag_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    assert onnx_embed.cache_root() == tmp_path / "onnx"
    monkeypatch.delenv("RAG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_embed.cache_root() == tmp_path / "xdg" / "rag" / "onnx"


def test_concurrent_exports_write_once_and_atomically(tmp_path, monkeypatch):
    """Eight threads ask at once (each opens the lock file itself, as processes do): one
    export runs, all get the same complete folder, nothing half-written is left behind."""
    model = fake_model(tmp_path / "m")
    calls = []

    def export(path, out):
        calls.append(out)
        assert not any(p.name.startswith("m-") for p in (tmp_path / "cache").iterdir() if p.is_dir()), \
            "the final folder must not exist while the export runs"
        threading.Event().wait(0.2)
        (out / onnx_embed.FP32).write_bytes(b"fp32")
        (out / onnx_embed.INT8).write_bytes(b"int8")
        return {"recipe": onnx_embed.RECIPE}

    monkeypatch.setattr(onnx_embed, "export", export)
    results, errors = [], []

    def ask():
        try:
            results.append(onnx_embed.exported(model, "m", tmp_path / "cache"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 1 and len(set(results)) == 1
    folder = results[0]
    assert sorted(p.name for p in folder.iterdir()) == ["export.json", "model-int8.onnx", "model.onnx"]
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == [folder.name]


def test_a_failed_export_leaves_nothing_and_the_next_one_runs(tmp_path, monkeypatch):
    model = fake_model(tmp_path / "m")

    def broken(path, out):
        (out / onnx_embed.FP32).write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(onnx_embed, "export", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        onnx_embed.exported(model, "m", tmp_path / "cache")
    assert [p for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []

    def works(path, out):
        for name in (onnx_embed.FP32, onnx_embed.INT8):
            (out / name).write_bytes(b"ok")
        return {}

    monkeypatch.setattr(onnx_embed, "export", works)
    killed = tmp_path / "cache" / f".{onnx_embed.cache_key(model, 'm')}.killed"  # an exporter killed midway
    killed.mkdir()
    folder = onnx_embed.exported(model, "m", tmp_path / "cache")
    assert (folder / onnx_embed.INT8).read_bytes() == b"ok"
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == [folder.name]


# -- the real bundled model --------------------------------------------------------------------

# Varied texts of our own: questions, prose, code, lists, other languages, very short, longer
# than the model's 256 tokens (truncated).
TEXTS = [
    "How do I upgrade the tool?",
    "Steps to update the program to the newest release",
    "Bananas are yellow and rich in potassium.",
    "What happens when the index is locked by another writer?",
    "The writer takes an exclusive lock on the index directory before any work starts.",
    "ds = ds.map_batches(Embed, batch_size=512, compute=ActorPoolStrategy(size=2))",
    "def mean(xs):\n    return sum(xs) / len(xs)",
    "pip install 'rag[embed]'",
    "Configure the retry budget: max_retries = 3, backoff doubles from 0.5 s.",
    "Wie installiere ich das Paket ohne Internetzugang?",
    "La réplica se reinicia cuando falla la comprobación de salud.",
    "東京の天気は明日晴れるでしょう。",
    "a",
    "?",
    "GPU out of memory while embedding; reduce the batch size or use fp16.",
    "Reciprocal rank fusion adds 1/(k + rank) over the ranked lists.",
    "Corrections override an answer when a new question is close enough to a corrected one.",
    "- install\n- configure\n- ingest\n- ask",
    "| setting | default |\n|---|---|\n| top_k | 5 |",
    "Error: connection refused (is the server running on port 8080?)",
    "The quick brown fox jumps over the lazy dog.",
    "Autoscaling adds replicas when the queue grows and removes them when it drains.",
    "Checkpoints are written every ten minutes to the configured storage path.",
    "SELECT path, count(*) FROM chunks GROUP BY path ORDER BY 2 DESC LIMIT 10;",
    "Python 3.11 or newer is required; 3.10 is not supported.",
    "Mean pooling averages the token vectors where the attention mask is one.",
    "Our cat sleeps on the warm laptop keyboard every afternoon.",
    "A scheduler places tasks on nodes that have the resources they ask for. " * 12,
    "Tokenization splits text into word pieces; unknown words become several pieces. " * 30,
    "HTTP 429 means too many requests: wait for the Retry-After header before trying again.",
    "Model weights are loaded once per actor and reused for every batch it receives.",
    "Is it safe to delete the cache folder? Yes; it is rebuilt on the next start.",
]

PASSAGES = {
    "upgrade": "To upgrade, run the self-update command; it downloads and installs the newest release.",
    "lock": "Only one writer may change an index at a time; a second one fails with a lock error.",
    "gpu": "When a GPU is present each embedding actor takes one and runs the model in half precision.",
    "retry": "Rate-limited requests are retried with exponential backoff, honouring Retry-After.",
    "fusion": "Dense and keyword results are merged by reciprocal rank fusion before reranking.",
    "cache": "Exported models are cached per weights hash, so deleting the cache only costs a re-export.",
    "fruit": "Bananas grow in tropical climates and turn yellow as they ripen.",
    "weather": "Tomorrow will be sunny in the morning with showers in the afternoon.",
    "sql": "The chunks table stores text, title, section and the vector of every chunk.",
    "python": "The package needs Python 3.11 or later and runs on Linux.",
}
QUERIES = {
    "how can I update to the latest version": "upgrade",
    "two processes writing the same index": "lock",
    "does embedding use the graphics card": "gpu",
    "what happens on HTTP 429": "retry",
    "how are keyword and vector hits combined": "fusion",
    "can I remove the onnx cache directory": "cache",
    "which fruit turns yellow": "fruit",
    "will it rain tomorrow": "weather",
    "where are chunk vectors stored": "sql",
    "minimum python version": "python",
}


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_minilm():
    embedder = load_embedder("all-MiniLM-L6-v2", backend="torch")
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def exported(onnx_cache):
    """The real export, made by this process and a second one at the same time."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pipelines import onnx_embed
        from pipelines.embed import OnnxEmbedder
        calls = []
        real = onnx_embed.export
        onnx_embed.export = lambda *a: calls.append(1) or real(*a)
        print("ready", flush=True)
        OnnxEmbedder(cache_dir={str(onnx_cache)!r}).warm_up()
        print("exports", len(calls), flush=True)
    """)
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline().strip() == "ready"  # imports done: it exports or waits now
    calls = []
    real = onnx_embed.export
    onnx_embed.export = lambda *a: calls.append(1) or real(*a)
    try:
        embedder = OnnxEmbedder(cache_dir=onnx_cache)
        embedder.warm_up()
    finally:
        onnx_embed.export = real
    out, _ = other.communicate(timeout=300)
    assert other.returncode == 0
    theirs = int(out.split()[-1])
    return embedder, len(calls) + theirs


@pytest.mark.integration
def test_export_runs_once_across_processes_and_is_reused(exported, onnx_cache, monkeypatch):
    int8, exports = exported
    assert exports == 1
    folders = [p for p in onnx_cache.iterdir() if p.is_dir()]
    assert folders == [int8.files] and folders[0].name.startswith("all-MiniLM-L6-v2-")
    meta = json.loads((int8.files / "export.json").read_text())
    assert meta["min_cosine_to_torch"]["model.onnx"] > 0.9999
    monkeypatch.setattr(onnx_embed, "export", lambda *a: pytest.fail("exported again"))
    again = OnnxEmbedder(quantized=False, cache_dir=onnx_cache)
    again.warm_up()
    assert again.files == int8.files


@pytest.mark.integration
def test_int8_and_fp32_agree_with_torch(exported, onnx_cache, torch_minilm):
    int8 = exported[0]
    fp32 = OnnxEmbedder(quantized=False, batch_size=8, cache_dir=onnx_cache)
    reference = torch_minilm.embed_documents(TEXTS)
    # measured on this set: fp32 0.99999+; int8 mean 0.996, min 0.985 (the text "?")
    for embedder, mean_floor, min_floor in ((fp32, 0.99999, 0.9999), (int8, 0.99, 0.97)):
        vectors = embedder.embed_documents(TEXTS)
        assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        cosine = np.sum(vectors * reference, axis=1)
        assert cosine.mean() >= mean_floor and cosine.min() >= min_floor, (embedder.backend, cosine)


@pytest.mark.integration
def test_int8_finds_the_same_nearest_passages(exported, torch_minilm):
    int8 = exported[0]
    keys = list(PASSAGES)
    for embedder in (torch_minilm, int8):
        passages = embedder.embed_documents([PASSAGES[k] for k in keys])
        for query, wanted in QUERIES.items():
            scores = passages @ embedder.embed_query(query)
            assert keys[int(np.argmax(scores))] == wanted, (embedder.backend, query)
    a = torch_minilm.embed_documents([PASSAGES[k] for k in keys])
    b = int8.embed_documents([PASSAGES[k] for k in keys])
    for query in QUERIES:  # the runner-up too (the third is a near tie for some queries)
        assert list(np.argsort(-(a @ torch_minilm.embed_query(query)))[:2]) == \
            list(np.argsort(-(b @ int8.embed_query(query)))[:2])


@pytest.mark.integration
def test_tokens_truncation_and_batching_match_torch(exported, torch_minilm):
    int8 = exported[0]
    assert int8.max_tokens == torch_minilm.max_tokens == 254 and int8.dimension == 384
    for text in TEXTS:
        assert int8.count_tokens(text) == torch_minilm.count_tokens(text)
    for embedder in (torch_minilm, int8):  # both keep the first 254 word pieces ("cat" is one)
        inside = [embedder.embed_query("cat " * 253 + end) for end in ("dog", "fish")]
        beyond = [embedder.embed_query("cat " * 254 + end) for end in ("dog", "fish")]
        assert float(inside[0] @ inside[1]) < 0.9999
        assert np.allclose(beyond[0], beyond[1], atol=1e-6)
    # one text at a time in int8: a vector does not depend on the texts batched with it
    batch = int8.embed_documents(TEXTS[:12])
    assert np.array_equal(batch[3], int8.embed_documents([TEXTS[3]])[0])


@pytest.mark.integration
def test_int8_embeds_questions_with_the_fp32_export(onnx_cache, exported, torch_minilm):
    """Chunks go through int8 (throughput); a question, one short text, through fp32."""
    int8 = exported[0]
    fp32 = OnnxEmbedder(quantized=False, cache_dir=onnx_cache)
    question = "How do I set the batch size in map_batches?"
    assert np.allclose(int8.embed_query(question), fp32.embed_query(question), atol=1e-5)
    assert float(int8.embed_query(question) @ torch_minilm.embed_query(question)) > 0.9999
    assert not np.allclose(int8.embed_query(question), int8.embed_documents([question])[0], atol=1e-4)
    assert np.allclose(int8.embed_queries([question, "hello"])[0], int8.embed_query(question), atol=1e-6)
    no_fp32 = OnnxEmbedder(cache_dir=onnx_cache, precise_queries=False)
    assert np.array_equal(no_fp32.embed_query(question), no_fp32.embed_documents([question])[0])


@pytest.mark.integration
def test_auto_picks_int8_on_this_cpu(onnx_cache, exported):
    auto = AutoEmbedder(cache_dir=onnx_cache)
    auto.warm_up()
    assert auto.backend == "onnx-int8" and auto.inner.files == exported[0].files
    assert np.array_equal(auto.embed_query("hello"), exported[0].embed_query("hello"))
