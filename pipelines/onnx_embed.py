"""A sentence-transformers model exported once to ONNX, and run by ONNX Runtime on the CPU.

The export is done offline from the local weights (nothing is downloaded): PyTorch traces
the transformer with mean pooling over the attention mask built in, ONNX Runtime's
transformer optimizer fuses it (attention, layer norms, GELU) and dynamic quantization
derives an int8 copy (per-channel int8 weights of the matrix products, activations
quantized on the fly; the token embeddings and a few sensitive projections stay fp32). Both
files are cached under `cache_root()`, in a folder named after the model and a hash of
its weights, written atomically and exported once however many processes ask at the same
time. `OnnxEmbedder` (pipelines/embed.py) uses them; this module only knows paths.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from indexes.errors import RagError, require

log = logging.getLogger(__name__)

RECIPE = "1"  # bump when the export changes: cached exports of an older recipe are then ignored
FP32, INT8 = "model.onnx", "model-int8.onnx"
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}
# Sentences the export is checked on against PyTorch: short, long, padded, truncated.
_CHECK_TEXTS = [
    "How do I install it?",
    "Ray Data streams blocks between operators; map_batches runs a function or an actor class "
    "over batches of rows, on CPUs or GPUs.",
    "a",
    "Ünïcode, numbers 3.14 and code: `ds.map_batches(fn, batch_size=32)` " * 40,
]


def missing_runtime() -> str | None:
    """The package the ONNX backends need that is not installed, or None."""
    return None if importlib.util.find_spec("onnxruntime") else "onnxruntime"


def unsupported_reason(path: Path) -> str | None:
    """Why the export cannot reproduce the sentence-transformers model at `path`, or None."""
    if not any((path / w).exists() for w in WEIGHTS):
        return f"no {' or '.join(WEIGHTS)} in {path}"
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return None  # a plain transformers model: sentence-transformers adds mean pooling
    modules = json.loads(modules_file.read_text())
    kinds = [m.get("type", "") for m in modules]
    if not kinds or kinds[0] != "sentence_transformers.models.Transformer" or modules[0].get("path", "") != "":
        return "its first module is not a Transformer at the model's root"
    if set(kinds) - _SUPPORTED_MODULES:
        return f"modules other than Transformer, Pooling and Normalize ({', '.join(sorted(set(kinds) - _SUPPORTED_MODULES))})"
    for module in modules:
        if module.get("type") == "sentence_transformers.models.Pooling":
            config = json.loads((path / module.get("path", "") / "config.json").read_text())
            modes = sorted(k for k, v in config.items() if k.startswith("pooling_mode") and v is True)
            if modes != ["pooling_mode_mean_tokens"]:
                return f"pooling {', '.join(modes) or 'none'} (only mean pooling is exported)"
            if config.get("include_prompt") is False:
                return "pooling that leaves out the prompt"
    return None


def cache_root() -> Path:
    """Where exports are kept: $RAG_CACHE_DIR/onnx, else ~/.cache/rag/onnx ($XDG_CACHE_HOME)."""
    base = os.environ.get("RAG_CACHE_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rag")
    return Path(base) / "onnx"


def cache_key(path: Path, name: str) -> str:
    """`<model name>-<12 hex digits>`: the hash covers the recipe, config.json and the weights."""
    digest = hashlib.sha256(f"rag-onnx-recipe-{RECIPE}\n".encode())
    for part in ("config.json", *WEIGHTS):
        file = path / part
        if file.exists():
            digest.update(part.encode())
            with open(file, "rb") as fh:
                while block := fh.read(1 << 22):
                    digest.update(block)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name or "model").strip("._") or "model"
    return f"{stem}-{digest.hexdigest()[:12]}"


def _complete(folder: Path) -> bool:
    return (folder / FP32).is_file() and (folder / INT8).is_file()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive lock across processes (Ray actors exporting at once wait for the first)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def exported(path: Path, name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder with `model.onnx` (fp32) and `model-int8.onnx` for the model at `path`.

    Exports on the first call; later calls, in any process, reuse the folder. The export is
    written to a temporary folder and renamed into place, under a file lock, so a crash or a
    second exporter never leaves a half-written model where a reader finds it.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / cache_key(path, name)
    if _complete(target):
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RagError(f"Cannot create the ONNX cache folder {root} ({exc}). Set RAG_CACHE_DIR to a "
                       "writable folder, or embedding_backend = 'torch'.") from None
    with _exclusive(root / f".{target.name}.lock"):
        if _complete(target):  # exported by another process while this one waited
            return target
        if target.exists():  # incomplete: files removed by hand
            shutil.rmtree(target)
        for stale in root.glob(f".{target.name}.*"):  # left by an exporter that was killed
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
        try:
            started = time.perf_counter()
            meta = export(path, work)
            (work / "export.json").write_text(json.dumps({"model": name, **meta}, indent=1))
            work.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
            os.rename(work, target)
            log.info("exported %s to ONNX in %.1f s: %s", name, time.perf_counter() - started, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def export(path: Path, out: Path) -> dict[str, Any]:
    """Write FP32 and INT8 for the model at `path` into `out`; returns what was checked."""
    torch = require("torch", "embed")
    transformers = require("transformers", "embed")
    onnx = require("onnx", "embed")
    ort = require("onnxruntime", "embed")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        # eager attention traces to the plain MatMul/Softmax pattern ORT's optimizer fuses
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True,
                                                       attn_implementation="eager").eval()
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]

        class MeanPooled(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, *inputs):
                features = dict(zip(names, inputs))
                hidden = self.inner(**features).last_hidden_state
                mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        wrapper = MeanPooled(model).eval()
        sample = tokenizer(_CHECK_TEXTS[:2], padding=True, return_tensors="pt")  # row 0 is padded
        raw = out / "raw.onnx"
        dynamic = {n: {0: "batch", 1: "tokens"} for n in names}
        with torch.no_grad():
            # The TorchScript exporter: the default (dynamo) one needs onnxscript as well.
            torch.onnx.export(
                wrapper, tuple(sample[n] for n in names), str(raw), input_names=names,
                output_names=["sentence_embedding"], dynamic_axes={**dynamic, "sentence_embedding": {0: "batch"}},
                opset_version=17, do_constant_folding=True, dynamo=False,
            )
        fp32 = out / FP32
        if model.config.model_type == "bert":
            from onnxruntime.transformers.optimizer import optimize_model

            optimized = optimize_model(str(raw), model_type="bert", num_heads=model.config.num_attention_heads,
                                       hidden_size=model.config.hidden_size)
            optimized.save_model_to_file(str(fp32))
            raw.unlink()
        else:
            raw.rename(fp32)
        keep = _kept_in_fp32(onnx.load(str(fp32)), getattr(model.config, "num_hidden_layers", 0))
        quantize_dynamic(str(fp32), str(out / INT8), op_types_to_quantize=["MatMul", "Attention"],
                         nodes_to_exclude=keep, per_channel=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})

        max_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
        check = tokenizer(_CHECK_TEXTS, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            expected = _unit(wrapper(*(check[n] for n in names)).numpy())
        feeds = {n: check[n].numpy().astype(np.int64) for n in names}
        agreement = {}
        for file, floor in ((FP32, 0.9999), (INT8, 0.97)):
            got = _unit(session(out / file, 1).run(None, feeds)[0])
            agreement[file] = float(np.min(np.sum(got * expected, axis=1)))
            if agreement[file] < floor:
                raise RagError(f"The ONNX export {file} disagrees with PyTorch (cosine {agreement[file]:.4f} < "
                               f"{floor}); set embedding_backend = 'torch'.")
    return {"recipe": RECIPE, "inputs": names, "torch": torch.__version__, "onnxruntime": ort.__version__,
            "min_cosine_to_torch": agreement}


def _kept_in_fp32(graph_model, layers: int) -> list[str]:
    """The feed-forward output projections of the first half of the layers: the matrix
    products whose int8 error moves the vectors most (all-MiniLM-L6-v2: mean cosine to
    PyTorch 0.9944 with everything quantized, 0.9973 with these three kept, for 10% of the
    speed-up). The token embeddings are never quantized (only MatMul and Attention are)."""
    pattern = re.compile(r"/layer\.(\d+)/output/dense/MatMul$")
    return [n.name for n in graph_model.graph.node
            if n.op_type == "MatMul" and (m := pattern.search(n.name)) and int(m.group(1)) < layers // 2]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def session(file: Path, threads: int | None = None):
    """An ONNX Runtime CPU session for `file` with `threads` threads (default: the CPUs available)."""
    ort = require("onnxruntime", "embed")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cpus()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: a library prints nothing
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def pooled(sess, encoded: dict[str, list[list[int]]], rows: list[int], pad_id: int) -> np.ndarray:
    """Mean-pooled vectors for `rows` of a tokenizer's unpadded output, padded to the longest."""
    width = max(len(encoded["input_ids"][i]) for i in rows)
    feeds = {}
    for inp in sess.get_inputs():
        fill = pad_id if inp.name == "input_ids" else 0
        array = np.full((len(rows), width), fill, dtype=np.int64)
        for r, i in enumerate(rows):
            values = encoded[inp.name][i] if inp.name in encoded else [0] * len(encoded["input_ids"][i])
            array[r, : len(values)] = values
        if inp.name == "attention_mask" and "attention_mask" not in encoded:
            for r, i in enumerate(rows):
                array[r, : len(encoded["input_ids"][i])] = 1
        feeds[inp.name] = array
    return sess.run(None, feeds)[0]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class _DropOnnxRuntimeRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter, optimizer and quantizer warn freely (some on the root logger); a library
    prints nothing, so their warnings are dropped while they run."""
    root, ort_logger = logging.getLogger(), logging.getLogger("onnxruntime")
    level = ort_logger.level
    drop = _DropOnnxRuntimeRecords()
    root.addFilter(drop)
    ort_logger.setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(drop)
        ort_logger.setLevel(level)
