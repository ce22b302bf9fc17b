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
# Host names the studio answers to (DNS-rebinding guard, .streamlit/config.toml).
hosts=(--server.allowedHosts localhost --server.allowedHosts 127.0.0.1)
hosts+=(--server.allowedHosts "[::1]")
case "$HOST" in 127.0.0.1|localhost|::1) ;; *) hosts+=(--server.allowedHosts "$HOST") ;; esac
IFS=',' read -r -a extra <<< "${STORYGRAPH_ALLOWED_HOSTS:-}"
for h in "${extra[@]}"; do [ -n "$h" ] && hosts+=(--server.allowedHosts "$h"); done
exec .venv/bin/streamlit run studio/app.py \
  --server.address "$HOST" --server.port "$PORT" --server.headless true \
  --browser.gatherUsageStats false --server.fileWatcherType none "${hosts[@]}" "$@"
