#!/usr/bin/env bash
# The README's first command: start a worker (with its embedded hub), send tasks, print results.
set -euo pipefail
cd "$(dirname "$0")/getting_started"
PORT=${QUICKSTART_PORT:-5555}
export CELERIAC_BROKER_URL=tcp://127.0.0.1:$PORT CELERIAC_HUB_DATA_DIR=${TMPDIR:-/tmp}/celeriac-quickstart-$$
# Given a broker address (here by CELERIAC_BROKER_URL, to pick a free port) a worker waits for
# its hub rather than take the port: --embedded-hub always says this one is the hub.
python -m celeriac -A tasks worker -c 2 --loglevel WARNING --embedded-hub always &
WORKER=$!
trap 'kill -TERM $WORKER 2>/dev/null; wait $WORKER 2>/dev/null; rm -rf "$CELERIAC_HUB_DATA_DIR"' EXIT
python client.py
