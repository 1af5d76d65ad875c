#!/usr/bin/env bash
# The whole test suite (slow soak tests are excluded; run them with: scripts/test.sh -m slow).
# With COVERAGE=1 it runs under coverage (the Python processes the tests start too); then
# `coverage combine && coverage report` (what .ci/run does). The 25 slowest tests are listed at
# the end: the suite should stay under 10 minutes. Tests run in parallel on every core
# (pytest-xdist; most of an integration test's time is waiting on processes it started):
# TEST_WORKERS=0 runs them one after another in this process, TEST_WORKERS=N on N workers.
set -euo pipefail
cd "$(dirname "$0")/.."
ARGS=(-m "not slow" -q --durations=25 -n "${TEST_WORKERS:-auto}" --maxprocesses=8)
if [[ -n "${COVERAGE:-}" ]]; then
    exec coverage run -m pytest "${ARGS[@]}" "$@"
fi
exec pytest "${ARGS[@]}" "$@"
