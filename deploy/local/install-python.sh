#!/usr/bin/env bash
# Make sure uv exists, then create .venv from uv.lock.
set -euo pipefail
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
# Byte-compiled ahead: where PYTHONDONTWRITEBYTECODE is set (it is on the project's test
# machine), Python never caches what it compiles, and every process (each service,
# platenctl call, migrate step) compiled every module it imports from source again, about
# 0.8 s of a 1.8 s start. uv compiles the dependencies; compileall our own sources, which
# it skips when up to date. A file that does not compile is left for its test to report.
uv sync --frozen --quiet --compile-bytecode
.venv/bin/python -m compileall -q -j 0 libs services apps tests deploy bench docs conftest.py \
  >/dev/null || true
