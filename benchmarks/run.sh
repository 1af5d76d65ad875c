#!/usr/bin/env bash
# celeriac vs Celery on the shared benchmark harness (<repo>/../shared/bench).
#
#   bash benchmarks/run.sh                      # 3 interleaved rounds (~5-10 min)
#   SMOKE=1 ROUNDS=1 bash benchmarks/run.sh     # tiny sizes, a minute or two
#
# Knobs (env):
#   ROUNDS=3        rounds; each round runs every config once, with a fresh worker
#   CONFIGS="celery:redis-prefork-c2 dramatiq:redis-p2-t8 celeriac:embedded-threads-c2 celeriac:standalone-threads-c2"
#                   system:config list (the default; dramatiq's CLI defaults on 2 cores are p2-t8)
#   SMOKE=1         tiny sizes (as the harness's run_all.sh)
#   RUN_ID=name     results go to benchmarks/results/$RUN_ID (default: a timestamp)
#   BENCH_DIR=path  the shared harness folder (default <repo>/../shared/bench)
#   EXTRA_ARGS=".." more queue_bench.py options, e.g. "--timeout 300"
#   PINNED=1        install the Celery versions of the recorded anchors run
#   NO_SETUP=1      do not install anything (fail if something is missing)
#   VENV_CELERIAC=path  celeriac's venv (default /tmp/venv-celeriac): one per work tree when
#                   several checkouts are measured on one machine (each run re-installs it)
#   ANCHORS_RUN=path    the scratch folder (default /tmp/anchors-run), BENCH_BROKER=tcp://..
#                   celeriac's hub address (default tcp://127.0.0.1:5599)
#
# Sets up (if missing) redis-server (apt), /tmp/venv-celery (celery[redis] psutil),
# /tmp/venv-dramatiq (the harness's pinned requirements/dramatiq.txt) and
# /tmp/venv-celeriac (psutil + `pip install -e <repo>`, refreshed every run), starts
# redis on loopback via the harness's servers.sh (stopped on exit, if we started it),
# runs the rounds and prints the summary (also written to the results dir as RESULTS.md), then
# the hub alone without sockets (benchmarks/hub_micro.py, one-task and 100-task turns).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$REPO/../shared/bench}
[ -f "$BENCH_DIR/harness/queue_bench.py" ] || { echo "no harness at $BENCH_DIR (set BENCH_DIR)" >&2; exit 2; }
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
RUN=${ANCHORS_RUN:-/tmp/anchors-run}
RUN_ID=${RUN_ID:-$(date +%Y%m%dT%H%M%S)}
export ANCHORS_RESULTS=$HERE/results/$RUN_ID
ROUNDS=${ROUNDS:-3}
CVENV=${VENV_CELERIAC:-/tmp/venv-celeriac}
CONFIGS=${CONFIGS:-"celery:redis-prefork-c2 dramatiq:redis-p2-t8 celeriac:embedded-threads-c2 celeriac:standalone-threads-c2"}
if [ "${SMOKE:-0}" = 1 ]; then
  QARGS="--n-noop 300 --n-result 200 --n-lat 50 --warmup 20"
else
  QARGS=""
fi
QARGS="$QARGS ${EXTRA_ARGS:-}"
want() { [[ " $CONFIGS " == *" $1:"* ]]; }
log() { echo "== $(date +%H:%M:%S) $*"; }

# ---- setup ------------------------------------------------------------------
setup_celery() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server || return 1
  fi
  local v=/tmp/venv-celery
  if ! "$v/bin/python" -c "import celery, redis, psutil" 2>/dev/null; then
    [ -x "$v/bin/python" ] || python3 -m venv "$v" || return 1
    "$v/bin/pip" install -q -U pip
    if [ "${PINNED:-0}" = 1 ]; then
      "$v/bin/pip" install -q -r "$BENCH_DIR/requirements/celery.txt" || return 1
    else
      "$v/bin/pip" install -q "celery[redis]" psutil || return 1
    fi
  fi
}
setup_dramatiq() {
  local v=/tmp/venv-dramatiq
  if ! "$v/bin/python" -c "import dramatiq, redis, psutil" 2>/dev/null; then
    [ -x "$v/bin/python" ] || python3 -m venv "$v" || return 1
    "$v/bin/pip" install -q -U pip
    "$v/bin/pip" install -q -r "$BENCH_DIR/requirements/dramatiq.txt" || return 1
  fi
}
setup_celeriac() {
  local v=$CVENV
  if ! "$v/bin/python" -c "import psutil" 2>/dev/null; then
    [ -x "$v/bin/python" ] || python3 -m venv "$v" || return 1
    "$v/bin/pip" install -q -U pip
    "$v/bin/pip" install -q psutil || return 1
  fi
  # every run: the package list / entry points of the work tree may have changed
  "$v/bin/pip" install -q -e "$REPO" >"$RUN/pip-celeriac.log" 2>&1 \
    || { cat "$RUN/pip-celeriac.log"; return 1; }
}
mkdir -p "$RUN" "$ANCHORS_RESULTS"
SKIP=""
if [ "${NO_SETUP:-0}" != 1 ]; then
  if want celery; then setup_celery || { echo "celery setup failed"; exit 1; }; fi
  if want dramatiq; then setup_dramatiq || { echo "dramatiq setup failed"; exit 1; }; fi
  if want celeriac; then setup_celeriac || { echo "celeriac setup failed"; exit 1; }; fi
fi
if want celeriac && ! "$CVENV/bin/celeriac" --help >/dev/null 2>&1; then
  echo "!! $CVENV/bin/celeriac --help fails: skipping the celeriac configs" >&2
  SKIP="celeriac"
fi

# ---- servers ----------------------------------------------------------------
STARTED_REDIS=0
cleanup() { [ "$STARTED_REDIS" = 1 ] && bash "$BENCH_DIR/servers.sh" stop redis; }
trap cleanup EXIT
trap 'exit 130' INT TERM
if want celery || want dramatiq; then
  if [ -f "$RUN/redis.pid" ] && kill -0 "$(cat "$RUN/redis.pid")" 2>/dev/null; then
    log "redis already running (pid $(cat "$RUN/redis.pid")): using it, leaving it running"
  else
    bash "$BENCH_DIR/servers.sh" start redis || exit 1
    STARTED_REDIS=1
  fi
fi

# ---- rounds -----------------------------------------------------------------
cd "$BENCH_DIR"
FAILED=0
for round in $(seq "$ROUNDS"); do
  for sc in $CONFIGS; do
    sys=${sc%%:*}; cfg=${sc#*:}
    if [ "$sys" = "$SKIP" ]; then
      echo "SKIPPED: $sys $cfg round $round"; FAILED=$((FAILED + 1)); continue
    fi
    log "round $round: $sys $cfg"
    if [ "$sys" = celeriac ]; then
      # shellcheck disable=SC2086
      PYTHONPATH=$HERE timeout 1500 "$CVENV/bin/python" harness/queue_bench.py \
        --adapter celeriac_adapter --config "$cfg" --reps 1 --tag "round-$round" $QARGS
    else
      # shellcheck disable=SC2086
      timeout 1500 "/tmp/venv-$sys/bin/python" harness/queue_bench.py \
        --adapter "$sys" --config "$cfg" --reps 1 --tag "round-$round" $QARGS
    fi || { echo "FAILED: $sys $cfg round $round"; FAILED=$((FAILED + 1)); }
  done
done

# ---- summary ----------------------------------------------------------------
# summarize.py knows celery/dramatiq/rq only: teach it celeriac's version keys and
# order, and replace the "redis-server X" server note (always added by the driver)
# with "embedded hub" on celeriac rows.
python3 - "$BENCH_DIR" "$ANCHORS_RESULTS" > "$ANCHORS_RESULTS/RESULTS.md" <<'EOF'
import contextlib, io, re, sys
sys.path.insert(0, sys.argv[1])
import summarize as s
s.SYS_VER_KEYS.setdefault("celeriac", ["celeriac", "pyzmq", "libzmq", "pykka", "msgpack"])
if "celeriac" not in s.ORDER:
    s.ORDER.insert(1, "celeriac")  # right after the celery baseline
sys.argv = ["summarize.py", sys.argv[2]]
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    s.main()
for line in buf.getvalue().splitlines():
    if line.startswith("| celeriac |"):
        hub = "standalone hub" if "standalone" in line else "embedded hub"
        line = re.sub(r"; redis-server [^ |]* \|$", f"; {hub} |", line)
    print(line)
EOF
# ---- the hub alone (no sockets): its own CPU per task, one-task turns and batched turns --------
if want celeriac && [ "$SKIP" != celeriac ]; then
  {
    echo; echo "### celeriac hub alone (benchmarks/hub_micro.py: HubState over SQLite, no sockets)"
    for batch in 1 100; do
      echo; echo "--batch $batch:"; echo '```'
      (cd "$RUN" && "$CVENV/bin/python" "$HERE/hub_micro.py" --tasks 5000 --batch "$batch" 2>&1) \
        || { echo "hub_micro failed"; FAILED=$((FAILED + 1)); }
      echo '```'
    done
  } >> "$ANCHORS_RESULTS/RESULTS.md"
fi
cat "$ANCHORS_RESULTS/RESULTS.md"
log "results: $ANCHORS_RESULTS (RESULTS.md + raw JSON); worker logs: $RUN/logs"
[ "$FAILED" = 0 ] || { echo "$FAILED run(s) failed or skipped"; exit 1; }
