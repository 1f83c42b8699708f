"""rag side by side with LangChain and LlamaIndex: the same files, the same embedding model
(the bundled all-MiniLM-L6-v2, loaded from its local directory by each framework's own
wrapper), the same chunk size (256 MiniLM tokens, 32 overlap), embedding batches of 32,
on this machine, in one run.

    .venv/bin/python benchmarks/compare.py CORPUS [--limit N] [--json FILE] [--sizes 10000,100000] [--questions 100]

1. Ingest, each framework in its own subprocess, so that its peak memory is its own: the
   RSS summed over its whole process tree (Ray's processes included; pages they share are
   counted in each), sampled twice a second, and the main process's ru_maxrss:
   - rag: `pipelines.ingest` (what `rag ingest` runs) into a FAISS index: Ray Data, rag's
     parsers and structure-aware chunker, one atomic commit;
   - LangChain: files read as text, `RecursiveCharacterTextSplitter` counting MiniLM
     tokens, `HuggingFaceEmbeddings` (langchain-community), a FAISS vector store, written
     through its indexing API (`index()` with a SQLRecordManager, cleanup="incremental");
   - LlamaIndex: files read as text into Documents keyed by path, an `IngestionPipeline`
     (`SentenceSplitter` counting MiniLM tokens, `HuggingFaceEmbedding`) with a docstore,
     `DocstoreStrategy.UPSERTS` and a `SimpleVectorStore`.
   Timed from nothing loaded (imports excepted: model loading, Ray's start and writing
   the store to disk are in) to a persisted index.
2. Re-ingest after changing 1% of the files (a paragraph appended to each): in the same
   process right after step 1 (models loaded, Ray up), then once more in a new process
   that opens the store step 1 left on disk (everything loads again). LangChain's
   cleanup="incremental" also re-embeds unchanged chunks of any source that straddles two
   of index()'s batches of 100 (langchain-ai/langchain issue 32612); that is counted, as
   its users get it.
3. Query latency p50/p95 at each size: the chunk texts of rag's index from step 1 repeated
   to size with random unit vectors (`benchmarks/query.py`'s `build`), the same texts and
   vectors given to LangChain's FAISS retriever and LlamaIndex's VectorStoreIndex
   retriever; k=5; every question embedded by each framework's own MiniLM wrapper.

Only .md and .rst files are used: all three frameworks read them as text (rag alone would
make sense of notebooks). The corpus is copied to a temporary directory and never touched.
Prints Markdown tables; --json FILE also writes every number (and the command) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

EXTENSIONS = (".md", ".rst")
CHUNK_TOKENS, CHUNK_OVERLAP, BATCH = 256, 32, 32
FRAMEWORKS = ("rag", "langchain", "llamaindex")
CHANGE = "\n\nThis paragraph was appended by benchmarks/compare.py to measure a re-ingest.\n"


# -- the parent: select, run the workers, measure their memory, report ---------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files (by path)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--sizes", default="10000,100000", help="index sizes for the query stage ('' skips it)")
    parser.add_argument("--questions", type=int, default=100, help="questions per query measurement")
    parser.add_argument("--worker", choices=[*FRAMEWORKS, "query"], help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["first", "again"], default="first", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)

    work = Path(tempfile.mkdtemp(prefix="rag-compare-"))
    try:
        files, changed = _prepare(args.corpus, work / "corpus", args.limit)
        (work / "plan.json").write_text(json.dumps({"changed": changed}))
        results: dict[str, Any] = {
            "command": " ".join([".venv/bin/python", *sys.argv]), "corpus": str(args.corpus),
            "files": len(files), "changed_files": changed, "cpus": os.cpu_count(), "ingest": {},
        }
        for name in FRAMEWORKS:
            first = _run_worker(name, "first", work, args)
            again = _run_worker(name, "again", work, args)
            results["ingest"][name] = {**first, **{k: v for k, v in again.items() if k.startswith("cold_")}}
            _save(results, args.json)
        if args.sizes:
            results["query"] = _run_worker("query", "first", work, args)["rows"]
            _save(results, args.json)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(_markdown(results))


def _save(results: dict[str, Any], path: Path | None) -> None:
    """Write what is measured so far (a long run that fails keeps its first stages)."""
    if path:
        path.write_text(json.dumps(results, indent=2) + "\n")


def _prepare(corpus: Path, target: Path, limit: int | None) -> tuple[list[str], list[str]]:
    """Copy the first `limit` text files to `target`; pick 1% of them (spread evenly) to change."""
    from pipelines.discover import discover

    found, _ = discover([str(corpus)], EXTENSIONS)
    files = sorted(str(Path(f.abspath).relative_to(corpus.absolute())) for f in found)[:limit]
    if not files:
        raise SystemExit(f"No {' or '.join(EXTENSIONS)} files under {corpus}.")
    for relpath in files:
        (target / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / relpath, target / relpath)
    n = max(1, round(len(files) / 100))
    return files, [files[i * len(files) // n] for i in range(n)]


def _run_worker(name: str, phase: str, work: Path, args) -> dict[str, Any]:
    """Run one worker in a subprocess; its result, with the peak memory of its process tree."""
    import psutil

    command = [sys.executable, __file__, str(args.corpus), "--worker", name, "--phase", phase,
               "--work", str(work), "--sizes", args.sizes, "--questions", str(args.questions)]
    log_path = work / f"{name}-{phase}.log"
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=log)
    root = psutil.Process(child.pid)
    peak_rss, processes = 0, 0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)  # wait4: the child's own ru_maxrss
        if pid:
            break
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        sizes = [rss for rss in map(_rss, tree) if rss]
        peak_rss, processes = max(peak_rss, sum(sizes)), max(processes, len(sizes))
        time.sleep(0.5)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"The {name} worker ({phase}) failed (exit {child.returncode}):\n{tail}")
    result = json.loads((work / f"{name}-{phase}.json").read_text())
    result.update(tree_rss_mib=peak_rss / 2**20, processes=processes, max_rss_mib=usage.ru_maxrss / 1024)
    return result


def _rss(process) -> int:
    """The resident size of one process (cheap: /proc/PID/statm), or 0 when it is gone."""
    import psutil

    try:
        return process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0


def _markdown(r: dict[str, Any]) -> str:
    ingest = r["ingest"]
    rag = ingest["rag"]
    rag_rate = rag["chunks"] / rag["seconds"]
    lines = [
        f"Corpus: {r['corpus']}, {r['files']} files ({'/'.join(EXTENSIONS)}); {r['cpus']} CPUs. "
        f"`{r['command']}`", "",
        "| ingest | chunks | seconds | chunks/s | × rag's chunks/s | peak memory, RSS summed over the "
        "process tree (MiB) | × rag's | main process max RSS (MiB) | processes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, x in ingest.items():
        rate = x["chunks"] / x["seconds"]
        lines.append(
            f"| {name} | {x['chunks']} | {x['seconds']:.1f} | {rate:.1f} | {rate / rag_rate:.2f} | "
            f"{x['tree_rss_mib']:.0f} | {x['tree_rss_mib'] / rag['tree_rss_mib']:.2f} | "
            f"{x['max_rss_mib']:.0f} | {x['processes']} |"
        )
    lines += [
        "", f"| re-ingest after changing {len(r['changed_files'])} of {r['files']} files "
        "| same process: seconds | chunks embedded | full ingest ÷ re-ingest "
        "| new process, store loaded from disk: seconds | chunks embedded | full ingest ÷ re-ingest |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, x in ingest.items():
        lines.append(f"| {name} | {x['reingest_seconds']:.2f} | {x['reingest_chunks']} | "
                     f"{x['seconds'] / x['reingest_seconds']:.1f} | {x['cold_reingest_seconds']:.2f} | "
                     f"{x['cold_reingest_chunks']} | {x['seconds'] / x['cold_reingest_seconds']:.1f} |")
    if "query" in r:
        lines += ["", "| chunks | retrieval, k=5, question embedding included | p50 ms | p95 ms |",
                  "|---|---|---|---|"]
        lines += [f"| {q['chunks']} | {q['what']} | {q['p50_ms']:.1f} | {q['p95_ms']:.1f} |" for q in r["query"]]
    return "\n".join(lines)


# -- the workers ---------------------------------------------------------------------------
def _worker(args) -> None:
    """One framework's ingest and warm re-ingest ("first"), or its re-ingest in a new process
    ("again"); or the query stage."""
    warnings.simplefilter("ignore")
    work: Path = args.work
    result: dict[str, Any] = {}
    if args.worker == "query":
        result["rows"] = _query(work / "rag" / "store", [int(s) for s in args.sizes.split(",")], args.questions)
    else:
        corpus, store = work / args.worker / "corpus", work / args.worker / "store"
        if args.phase == "first":
            shutil.copytree(work / "corpus", corpus)
        run = INGESTS[args.worker](corpus, store)  # imports done; models load in the first run
        if args.phase == "first":
            result["chunks"], result["seconds"] = _timed(run)
            _change(work, corpus)
            result["reingest_chunks"], result["reingest_seconds"] = _timed(run)
        else:
            _change(work, corpus)
            result["cold_reingest_chunks"], result["cold_reingest_seconds"] = _timed(run)
    (work / f"{args.worker}-{args.phase}.json").write_text(json.dumps(result))


def _timed(run: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    chunks = run()
    return chunks, time.perf_counter() - started


def _change(work: Path, corpus: Path) -> None:
    """Append a paragraph to the 1% of files the plan names (again on each call)."""
    for relpath in json.loads((work / "plan.json").read_text())["changed"]:
        with open(corpus / relpath, "a", encoding="utf-8") as fh:
            fh.write(CHANGE)


def _model_dir() -> str:
    from pipelines.embed import resolve_model_path

    return str(resolve_model_path("all-MiniLM-L6-v2"))


def _texts(corpus: Path) -> list[tuple[str, str]]:
    """(path relative to the corpus, text) for every file, the way LangChain and LlamaIndex get them."""
    return [(str(p.relative_to(corpus)), p.read_text(encoding="utf-8"))
            for p in sorted(corpus.rglob("*")) if p.suffix in EXTENSIONS]


def _rag_ingest(corpus: Path, store: Path) -> Callable[[], int]:
    """rag's ingest, as `rag ingest CORPUS --index STORE` runs it (Ray starts in the first run)."""
    import ray  # noqa: F401  (imported before the clock starts, like the other frameworks)

    from indexes.faiss_index import FaissIndex
    from pipelines import ChunkingConfig, IngestOptions, ingest

    index = FaissIndex(store)  # opens the store on disk, if there is one
    options = IngestOptions(chunking=ChunkingConfig(CHUNK_TOKENS, CHUNK_OVERLAP), extensions=EXTENSIONS,
                            embed_batch_size=BATCH)

    def run() -> int:
        report = ingest([str(corpus)], index, options)
        if report.failed:
            raise RuntimeError(f"rag failed on {len(report.failed)} files: {report.failed[:3]}")
        return report.chunks_written

    return run


def _langchain_ingest(corpus: Path, store: Path) -> Callable[[], int]:
    """LangChain's splitter, HuggingFaceEmbeddings and FAISS, through its indexing API."""
    import faiss
    from langchain_classic.indexes import SQLRecordManager
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
    from langchain_core.documents import Document
    from langchain_core.indexing import index
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers import AutoTokenizer

    loaded: dict[str, Any] = {}

    def load() -> None:
        tokenizer = AutoTokenizer.from_pretrained(_model_dir(), local_files_only=True)
        loaded["splitter"] = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)
        embeddings = HuggingFaceEmbeddings(model_name=_model_dir(), model_kwargs={"local_files_only": True},
                                           encode_kwargs={"batch_size": BATCH, "normalize_embeddings": True})
        inner_product = DistanceStrategy.MAX_INNER_PRODUCT
        if (store / "index.faiss").exists():
            loaded["store"] = FAISS.load_local(str(store), embeddings, allow_dangerous_deserialization=True,
                                               distance_strategy=inner_product)
        else:
            store.mkdir(parents=True, exist_ok=True)
            dimension = len(embeddings.embed_query("dimension"))
            loaded["store"] = FAISS(embeddings, faiss.IndexFlatIP(dimension), InMemoryDocstore(), {},
                                    distance_strategy=inner_product)
        loaded["records"] = SQLRecordManager("compare", db_url=f"sqlite:///{store}/records.sqlite")
        loaded["records"].create_schema()

    def run() -> int:
        if not loaded:
            load()
        docs = [Document(text, metadata={"source": path}) for path, text in _texts(corpus)]
        chunks = loaded["splitter"].split_documents(docs)
        result = index(chunks, loaded["records"], loaded["store"], cleanup="incremental", source_id_key="source")
        loaded["store"].save_local(str(store))
        return result["num_added"]

    return run


def _llamaindex_ingest(corpus: Path, store: Path) -> Callable[[], int]:
    """LlamaIndex's IngestionPipeline: SentenceSplitter, HuggingFaceEmbedding, docstore upserts."""
    from llama_index.core import Document
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.core.vector_stores import SimpleVectorStore
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers import AutoTokenizer

    loaded: dict[str, Any] = {}
    vectors = store / "vector_store.json"

    def load() -> None:
        tokenizer = AutoTokenizer.from_pretrained(_model_dir(), local_files_only=True)
        splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP, tokenizer=tokenizer.tokenize)
        embed = HuggingFaceEmbedding(model_name=_model_dir(), embed_batch_size=BATCH, device="cpu")
        vector_store = SimpleVectorStore.from_persist_path(str(vectors)) if vectors.exists() else SimpleVectorStore()
        pipeline = IngestionPipeline(transformations=[splitter, embed], docstore=SimpleDocumentStore(),
                                     vector_store=vector_store, docstore_strategy=DocstoreStrategy.UPSERTS)
        if store.exists():
            pipeline.load(str(store))
        loaded["pipeline"] = pipeline

    def run() -> int:
        if not loaded:
            load()
        pipeline = loaded["pipeline"]
        docs = [Document(text=text, id_=path, metadata={"source": path}) for path, text in _texts(corpus)]
        nodes = pipeline.run(documents=docs)
        pipeline.persist(str(store))
        pipeline.vector_store.persist(str(vectors))
        return len(nodes)

    return run


INGESTS: dict[str, Callable[[Path, Path], Callable[[], int]]] = {
    "rag": _rag_ingest, "langchain": _langchain_ingest, "llamaindex": _llamaindex_ingest,
}


def _query(texts_from: Path, sizes: list[int], questions: int) -> list[dict[str, Any]]:
    """Retrieval latency per framework at each size, on the same texts and vectors."""
    import numpy as np

    from indexes.faiss_index import FaissIndex
    from pipelines.embed import load_embedder
    from query import QUESTIONS, build, percentiles  # benchmarks/query.py
    from rag import Assistant, Config

    source = FaissIndex(texts_from)
    texts = [c.text for c in source.chunks()]
    source.close()
    embedder = load_embedder("all-MiniLM-L6-v2")
    embedder.warm_up()
    asked = [QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" ({i})") for i in range(questions)]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            index = build(tmp, n, embedder.dimension, np.random.default_rng(0), texts)
            vectors = _build_vectors(n, embedder.dimension, np.random.default_rng(0))
            middle = n // 2  # the same vectors as build's, or stop here
            probe = index.search(vectors[middle], 1)[0].chunk
            assert (probe.path, probe.position) == (f"docs/page{middle // 10}.md", middle % 10), "vectors differ"
            searches: dict[str, Callable[[str], Any]] = {}
            for mode in ("dense", "hybrid"):
                assistant = Assistant(Config(index=tmp, retrieval_mode=mode), index=index, embedder=embedder)
                searches[f"rag, {mode} (one chunk per page)"] = lambda q, a=assistant: a.search(q, 5)
            page_texts = [texts[i % len(texts)] for i in range(n)]
            searches["LangChain FAISS retriever"] = _langchain_retriever(page_texts, vectors).invoke
            searches["LlamaIndex VectorStoreIndex retriever (SimpleVectorStore)"] = \
                _llamaindex_retriever(page_texts, vectors).retrieve
            for what, search in searches.items():
                search(asked[0])  # warm-up
                timings = []
                for q in asked:
                    started = time.perf_counter()
                    search(q)
                    timings.append(1000 * (time.perf_counter() - started))
                p50, p95 = percentiles(timings)
                rows.append({"chunks": n, "what": what, "p50_ms": p50, "p95_ms": p95})
            index.close()
    return rows


def _build_vectors(n: int, dim: int, rng) -> Any:
    """The unit vectors `query.build` draws from the same generator: blocks of 5,000."""
    import numpy as np

    blocks = []
    for start in range(0, n, 5000):
        block = rng.standard_normal((min(5000, n - start), dim)).astype(np.float32)
        blocks.append(block / np.linalg.norm(block, axis=1, keepdims=True))
    return np.concatenate(blocks)


def _langchain_retriever(texts: list[str], vectors):
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

    embeddings = HuggingFaceEmbeddings(model_name=_model_dir(), model_kwargs={"local_files_only": True},
                                       encode_kwargs={"normalize_embeddings": True})
    store = FAISS.from_embeddings(list(zip(texts, vectors.tolist())), embeddings,
                                  metadatas=[{"source": f"docs/page{i // 10}.md"} for i in range(len(texts))],
                                  distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
    return store.as_retriever(search_kwargs={"k": 5})


def _llamaindex_retriever(texts: list[str], vectors):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    embed = HuggingFaceEmbedding(model_name=_model_dir(), device="cpu")
    nodes = [TextNode(id_=str(i), text=t, embedding=v, metadata={"source": f"docs/page{i // 10}.md"})
             for i, (t, v) in enumerate(zip(texts, vectors.tolist()))]
    return VectorStoreIndex(nodes, embed_model=embed).as_retriever(similarity_top_k=5)


if __name__ == "__main__":
    main()
