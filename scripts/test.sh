#!/usr/bin/env bash
# The whole test suite (slow soak tests are excluded; run them with: scripts/test.sh -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
exec pytest -m "not slow" -q "$@"
