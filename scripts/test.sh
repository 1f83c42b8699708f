#!/usr/bin/env bash
# Install everything with the test tools, then run the whole test suite.
#
#   scripts/test.sh [pytest arguments]      e.g. scripts/test.sh -m "not integration"
set -euo pipefail
cd "$(dirname "$0")/.."
RAG_EXTRAS="all,dev" scripts/install.sh
# The chat page is tested in headless Chromium; without it that test fails rather than skips
# (RAG_REQUIRE_BROWSER=0 lets it skip where Chromium cannot be installed).
if scripts/install-browser.sh; then :; else echo "warning: could not install the browser test's tools" >&2; fi
export RAG_REQUIRE_BROWSER="${RAG_REQUIRE_BROWSER:-1}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest "$@"
