#!/usr/bin/env bash
# Start StoryGraph Studio: installs into .venv on first use, then serves on
# 127.0.0.1 (STORYGRAPH_HOST / STORYGRAPH_PORT to change). Extra arguments go
# to `streamlit run` (e.g. --server.fileWatcherType auto to reload on edits).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
HOST=${STORYGRAPH_HOST:-127.0.0.1}
PORT=${STORYGRAPH_PORT:-8501}
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
echo "StoryGraph Studio: http://$HOST:$PORT"
# The studio answers only to its host names (localhost, 127.0.0.1, ::1,
# STORYGRAPH_HOST, STORYGRAPH_ALLOWED_HOSTS) and refuses to be framed, on every
# route: studio/serve.py starts `streamlit run studio/app.py` with that guard.
exec .venv/bin/python -m studio.serve \
  --server.address "$HOST" --server.port "$PORT" --server.headless true \
  --browser.gatherUsageStats false --server.fileWatcherType none "$@"
