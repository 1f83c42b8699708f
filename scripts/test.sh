#!/usr/bin/env bash
# Install everything with the test tools, then run the whole test suite.
#
#   scripts/test.sh [pytest arguments]      e.g. scripts/test.sh -m "not integration"
set -euo pipefail
cd "$(dirname "$0")/.."
RAG_EXTRAS="all,dev" scripts/install.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest "$@"
