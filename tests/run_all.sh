#!/usr/bin/env bash
# Install everything the suite needs on a fresh machine, then run every test (offline, CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
python -m pip install -q "torch==2.13.0" -e ".[test]"
export HF_HUB_OFFLINE=1
python -m ruff check .
python -m pytest -q "$@"
