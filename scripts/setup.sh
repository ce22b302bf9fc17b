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
"$VENV/bin/python" -m pip install -q -e ".[dev]"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "Installed into $VENV"
