#!/usr/bin/env bash
# Set up if needed, lint, then run the tests (unit + AppTest, then the browser).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
if [ -d tests/e2e ] && ls tests/e2e/test_*.py >/dev/null 2>&1 && [ -z "${SKIP_E2E:-}" ]; then
  ./scripts/setup_browser.sh
  .venv/bin/python -m pytest tests/e2e -p no:cacheprovider -q
fi
