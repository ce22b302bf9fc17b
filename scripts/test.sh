#!/usr/bin/env bash
# Set up if needed, lint (ruff, the import contract), then run the tests (unit +
# AppTest, then the browser). Each pytest run ends with its summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache   # the layering contract in pyproject.toml
.venv/bin/python -m pytest "$@"
if [ -d tests/e2e ] && ls tests/e2e/test_*.py >/dev/null 2>&1 && [ -z "${SKIP_E2E:-}" ]; then
  ./scripts/setup_browser.sh
  .venv/bin/python -m pytest tests/e2e -p no:cacheprovider
fi
