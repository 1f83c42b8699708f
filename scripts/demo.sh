#!/usr/bin/env bash
# Install everything, ingest the project's own docs/, and ask a question about rag.
#
#   scripts/demo.sh ["your question"]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # nothing is fetched at run time
question="${1:-How do I ingest my documents and ask a question?}"
echo "==> rag ingest docs" >&2
.venv/bin/rag ingest docs --index .rag
echo "==> rag ask \"$question\"" >&2
.venv/bin/rag ask "$question" --index .rag
