#!/usr/bin/env bash
# The whole test suite (slow soak tests are excluded; run them with: scripts/test.sh -m slow).
# With COVERAGE=1 it runs under coverage (the Python processes the tests start too); then
# `coverage combine && coverage report` (what .ci/run does). The 25 slowest tests are listed at
# the end: the suite should stay under 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${COVERAGE:-}" ]]; then
    exec coverage run -m pytest -m "not slow" -q --durations=25 "$@"
fi
exec pytest -m "not slow" -q --durations=25 "$@"
