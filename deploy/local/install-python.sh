#!/usr/bin/env bash
# Make sure uv exists, then create .venv from uv.lock.
set -euo pipefail
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
uv sync --frozen --quiet
