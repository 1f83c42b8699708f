#!/usr/bin/env bash
# A documentation assistant for Ray: install, ingest ray/doc/source, serve it with a chat page.
#
#   scripts/ray-docs-assistant.sh PATH/TO/ray/doc/source [rag serve options]
#
# Then open http://127.0.0.1:8000/. Later runs only re-ingest files that changed.
set -euo pipefail
corpus="${1:?usage: scripts/ray-docs-assistant.sh PATH/TO/ray/doc/source [rag serve options]}"
shift
[ -d "$corpus" ] || { echo "No such directory: $corpus (clone https://github.com/ray-project/ray)" >&2; exit 2; }
corpus="$(cd "$corpus" && pwd)"
cd "$(dirname "$0")/.."
scripts/install.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
index="${RAG_INDEX:-.rag-ray}"
echo "==> rag ingest $corpus --index $index" >&2
.venv/bin/rag ingest "$corpus" --index "$index" --allow-failures \
  --source-url 'https://docs.ray.io/en/master/{path}.html'
echo "==> rag serve --index $index $*" >&2
exec .venv/bin/rag serve --index "$index" "$@"
