#!/usr/bin/env bash
# The main command (README): installs what is missing (scripts/bootstrap.sh), then runs the dashboard + central
# worker + one lab director (UML guest with our agent) until Ctrl-C. `make run` is the same.
# `scripts/run.sh stop` (make stop) stops a running instance from another shell.
# Everything started here is killed by pid/process group on exit; the lab removes its namespaces and taps.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/run
PY=$ROOT/.venv/bin/python
export UMW_LAB_DIR=${UMW_LAB_DIR:-/tmp/umw-lab}
PORT=${PORT:-8000}
mkdir -p "$RUN"
log() { echo "[run $(date +%T)] $*"; }

stop_all() {
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null; rm -f "$f"
  done
  lab/lab.sh down >/dev/null 2>&1 || true
}

if [ "${1:-}" = stop ]; then stop_all; log "stopped"; exit 0; fi
bash scripts/bootstrap.sh || { log "bootstrap failed"; exit 1; }

t0=$(date +%s.%N)
stop_all  # leftovers of a previous run
trap 'log "stopping..."; stop_all; log "stopped"; exit 0' INT TERM
trap 'stop_all' EXIT

# the web process refuses to start without a SECRET_KEY (DEBUG is off): one random key, kept in run/
[ -s "$RUN/secret_key" ] || (umask 077; $PY -c 'import secrets; print(secrets.token_urlsafe(50))' >"$RUN/secret_key")
export SECRET_KEY=${SECRET_KEY:-$(cat "$RUN/secret_key")}

log "starting the lab director (UML guest) and its Redis"
lab/lab.sh up 1 --traffic || { log "lab failed to start"; exit 1; }
# the central side logs in to Redis as its own ACL user and signs desired states with the lab's key ring,
# whose public key the lab's agents trust (README "Security model")
REDIS_URL=$(lab/lab.sh central-url) || exit 1
export REDIS_URL UMW_SIGNING_DIR="$UMW_LAB_DIR/run/signing"

$PY manage.py migrate --noinput -v0
$PY manage.py setup --demo lab1
$PY manage.py collectstatic --noinput -v0

log "starting the central worker (beat embedded) and the event follower"
setsid .venv/bin/celery -A ultramonkey_web worker -B -Q central -c 2 -l WARNING \
  --schedule "$RUN/celerybeat-schedule" >"$RUN/worker.log" 2>&1 & echo $! >"$RUN/worker.pid"
setsid $PY manage.py ingest --follow >"$RUN/ingest.log" 2>&1 & echo $! >"$RUN/ingest.pid"
$PY manage.py push lab1

log "starting the dashboard on http://127.0.0.1:$PORT"
setsid .venv/bin/gunicorn ultramonkey_web.wsgi --bind "127.0.0.1:$PORT" --workers 2 --threads 4 \
  --access-logfile - >"$RUN/web.log" 2>&1 & echo $! >"$RUN/web.pid"
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/login/" 2>/dev/null && break; sleep 0.1
done
log "dashboard ready in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s: http://127.0.0.1:$PORT (Ctrl-C to stop)"
while kill -0 "$(cat "$RUN/web.pid")" 2>/dev/null; do sleep 1; done
