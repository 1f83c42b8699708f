"""Load on a running `rag serve`: N concurrent clients ask for a fixed time; latency and errors.

    rag serve --index .rag &
    python benchmarks/load.py --url http://127.0.0.1:8000 --clients 8 --duration 60

Each client asks questions in turn (from --questions, a JSONL file with a "question" field,
or a built-in list about this project's docs), waiting for each answer before the next.
Requests still in flight at the deadline are finished and counted. Reports requests,
errors by kind, latency p50/p95/max (and time to first byte with --stream), answers per
second, and with --pid the resident memory of those processes before and after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

QUESTIONS = [
    "How do I install rag?",
    "How do I ingest a folder of documents?",
    "What is a correction?",
    "How do I use PostgreSQL instead of FAISS?",
    "Which file types can be ingested?",
    "How do I serve the local model over HTTP?",
    "What does rag eval measure?",
    "How are sources cited in an answer?",
]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes, in MiB (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def run_load(url: str, clients: int = 8, duration: float = 60.0, questions: list[str] | None = None,
             stream: bool = False, timeout: float = 300.0) -> dict:
    """Drive the server; returns the report as a dict."""
    questions = questions or QUESTIONS
    deadline = time.monotonic() + duration
    lock = threading.Lock()
    latencies: list[float] = []
    first_bytes: list[float] = []
    errors: dict[str, int] = {}

    def failed(kind: str) -> None:
        with lock:
            errors[kind] = errors.get(kind, 0) + 1

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=timeout) as http:
            i = number
            while time.monotonic() < deadline:
                question = questions[i % len(questions)]
                i += clients
                started = time.perf_counter()
                try:
                    if stream:
                        first = None
                        final = broken = False
                        with http.stream("POST", "/v1/ask/stream", json={"question": question}) as response:
                            if response.status_code != 200:
                                failed(f"HTTP {response.status_code}")
                                continue
                            for line in response.iter_lines():
                                if first is None and line == "event: delta":  # the first text, not headers
                                    first = time.perf_counter() - started
                                if line == "event: answer":
                                    final = True
                                elif line == "event: error":
                                    broken = True
                        if broken or not final:
                            failed("stream error event" if broken else "stream ended without an answer")
                            continue
                        with lock:
                            first_bytes.append(first or 0.0)
                    else:
                        response = http.post("/v1/ask", json={"question": question})
                        if response.status_code != 200:
                            failed(f"HTTP {response.status_code}")
                            continue
                        if not response.json().get("answer"):
                            failed("empty answer")
                            continue
                except httpx.HTTPError as exc:
                    failed(type(exc).__name__)
                    continue
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    report = {
        "clients": clients, "duration_s": round(elapsed, 1), "answers": len(latencies),
        "errors": sum(errors.values()), "errors_by_kind": errors,
        "answers_per_s": round(len(latencies) / elapsed, 3),
        "latency_s": {"p50": round(percentile(latencies, 0.5), 2), "p95": round(percentile(latencies, 0.95), 2),
                      "max": round(max(latencies, default=0.0), 2),
                      "mean": round(statistics.fmean(latencies), 2) if latencies else 0.0},
    }
    if stream:
        report["first_byte_s"] = {"p50": round(percentile(first_bytes, 0.5), 2),
                                  "p95": round(percentile(first_bytes, 0.95), 2)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds during which new questions are sent.")
    parser.add_argument("--questions", type=Path, help="JSONL with a 'question' field (default: questions about docs/).")
    parser.add_argument("--stream", action="store_true", help="Use /v1/ask/stream and report time to first byte.")
    parser.add_argument("--pid", type=int, action="append", default=[], help="Report RSS of this process (repeatable).")
    args = parser.parse_args(argv)
    questions = None
    if args.questions:
        questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    before = rss_mb(args.pid) if args.pid else None
    report = run_load(args.url, args.clients, args.duration, questions, args.stream)
    if args.pid:
        report["rss_mb"] = {"before": round(before, 1), "after": round(rss_mb(args.pid), 1)}
    print(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
