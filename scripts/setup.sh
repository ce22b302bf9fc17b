#!/usr/bin/env bash
# Create .venv and install StoryGraph Studio with its test tools.
# Quick when nothing changed: it compares a hash of pyproject.toml with the
# one recorded at the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"

if [ -f "$stamp" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV ..."
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first, pinned: the CPU build comes from a local wheel where one is
# provided, and open_clip's torchvision then accepts it instead of pulling a
# CUDA build of a newer torch.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "Installed into $VENV"
