#!/usr/bin/env bash
# Proves docker-compose.yml on a real Docker engine, as a user runs it: PostgreSQL, Redis, web (migrations and
# the first admin), central worker, beat and the director agent come up from .env secrets; the dashboard
# answers; a demo director is created through the API; the agent container connects and reports that this
# kernel has no IPVS (scripts/compose_smoke.py checks all of that over HTTP).
#
# On this kind of machine (no systemd, image registries unreachable) it also:
# - installs docker.io, docker-compose and debootstrap when missing, and starts dockerd itself when no engine
#   answers (own pid file and log under $WORK; stopped by that pid at the end);
# - builds local stand-ins for the base images the Dockerfile and compose file name (python:3.11-slim-bookworm,
#   postgres:16, redis:7) from a debootstrap'ed Debian bookworm (`docker import`), only for the ones missing,
#   so both files stay exactly what a user runs against Docker Hub (scripts/standin/*.Dockerfile say how).
#
# Networking: scripts/test-compose.override.yml makes every compose network internal and puts the agent in
# the Redis container's namespace, so the stack reaches nothing but its own containers and the agent's
# NET_ADMIN touches nothing of this machine; the script talks to the web container on its bridge address.
#
# Usage (as root): bash scripts/test-compose.sh      UMW_COMPOSE_KEEP=1 leaves the stack running.
# Cost (2 shared cores): ~10 min from nothing (debootstrap ~4), ~6 min rebuilding the app image, ~2 min with images.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${UMW_COMPOSE_DIR:-/tmp/umw-compose}
PROJECT=${UMW_COMPOSE_PROJECT:-umwcompose}
DIRECTOR=director1
started=$(date +%s)
mkdir -p "$WORK"
log() { echo "test-compose [$(( $(date +%s) - started ))s]: $*"; }
die() { echo "test-compose: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it starts dockerd and builds images)"

# -- tools ------------------------------------------------------------------------------------------------
missing=""
for p in docker.io docker-compose debootstrap curl python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  log "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# -- engine -----------------------------------------------------------------------------------------------
DOCKERD_PID=""
cleanup() {
  local rc=$?
  if [ "${UMW_COMPOSE_KEEP:-0}" != 1 ] && [ -n "${COMPOSE_READY:-}" ]; then
    if [ $rc -ne 0 ]; then
      log "logs of the failed run:"; for s in web worker agent; do compose logs --no-color --tail=25 "$s" 2>&1 | sed "s/^/  /"; done || true
    fi
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  if [ -n "$DOCKERD_PID" ] && [ "${UMW_COMPOSE_KEEP:-0}" != 1 ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    log "stopped the dockerd this script started (pid $DOCKERD_PID)"
  fi
  exit $rc
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  log "no Docker engine answers: starting dockerd (log $WORK/dockerd.log)"
  dockerd --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s (see $WORK/dockerd.log)"
fi

# -- base images: the official ones when present, else stand-ins built here -------------------------------
have() { docker image inspect "$1" >/dev/null 2>&1; }
standin() {  # standin IMAGE DOCKERFILE
  have "$1" && return 0
  if ! have umw-standin/debian:bookworm; then
    log "debootstrap Debian bookworm (minbase) for the stand-in base image"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
      || die "debootstrap failed (see $WORK/debootstrap.log)"
    tar -C "$WORK/rootfs" -c . | docker import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - umw-standin/debian:bookworm >/dev/null
    rm -rf "$WORK/rootfs"
  fi
  log "building a local stand-in for $1 (scripts/standin/$2)"
  rm -rf "$WORK/standin" && cp -r scripts/standin "$WORK/standin" && mkdir -p "$WORK/standin/extra-ca"
  cp /usr/local/share/ca-certificates/*.crt "$WORK/standin/extra-ca/" 2>/dev/null || true
  docker build -q -t "$1" -f "$WORK/standin/$2" "$WORK/standin" >"$WORK/standin.log" 2>&1 \
    || { tail -20 "$WORK/standin.log"; die "building the stand-in for $1 failed"; }
}
standin python:3.11-slim-bookworm python.Dockerfile
standin postgres:16 postgres.Dockerfile
standin redis:7 redis.Dockerfile

# -- .env: no working defaults ----------------------------------------------------------------------------
compose() { docker-compose -p "$PROJECT" --env-file "$WORK/.env" -f docker-compose.yml -f scripts/test-compose.override.yml "$@"; }
cp .env.example "$WORK/.env"
if out=$(compose config -q 2>&1); then die "compose accepted .env.example with empty secrets"; fi
echo "$out" | grep -q "set POSTGRES_PASSWORD in .env" || die "unexpected error for empty secrets: $out"
log "compose refuses the example .env with empty secrets: ${out##*: }"
secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
ADMIN_PASSWORD=$(secret)
sed -i -e "s/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=$(secret)/" -e "s/^REDIS_PASSWORD=$/REDIS_PASSWORD=$(secret)/" \
  -e "s/^SECRET_KEY=$/SECRET_KEY=$(secret)/" -e "s/^UMW_ADMIN_PASSWORD=$/UMW_ADMIN_PASSWORD=$ADMIN_PASSWORD/" \
  -e "s/^DIRECTOR_NAME=.*/DIRECTOR_NAME=$DIRECTOR/" "$WORK/.env"
chmod 600 "$WORK/.env"
compose config -q

# -- up ---------------------------------------------------------------------------------------------------
compose down -v --remove-orphans >/dev/null 2>&1 || true
COMPOSE_READY=1
log "docker-compose up --build (image build log: $WORK/build.log)"
compose build >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "image build failed"; }
compose up -d >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; die "compose up failed"; }

for net in $(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"); do
  [ "$(docker network inspect -f '{{.Internal}}' "$net")" = true ] \
    || die "network $(docker network inspect -f '{{.Name}}' "$net") is not internal"
done
log "every network of the stack is internal: $(docker network ls --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Name}}' | tr '\n' ' ')"

web=$(compose ps -q web)
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$web" | awk '{print $1}')
BASE=http://$ip:8000
for i in $(seq 1 120); do
  code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' -H 'Host: localhost' "$BASE/login/" || true)
  [ "$code" = 200 ] && break
  [ "$i" = 120 ] && die "the dashboard did not answer on $BASE within 120 s (last HTTP status $code)"
  sleep 1
done
log "the dashboard answers on $BASE"

compose exec -T web python manage.py showmigrations --plan >"$WORK/migrations.txt"
grep -c '^\[ \]' "$WORK/migrations.txt" >/dev/null && die "unapplied migrations: $(grep '^\[ \]' "$WORK/migrations.txt")"
log "migrations applied (web ran migrate on start)"
for svc in postgres redis web worker beat; do
  [ "$(docker inspect -f '{{.State.Running}}' "$(compose ps -q $svc)")" = true ] || die "service $svc is not running"
done
log "running: postgres redis web worker beat"
logs_of() { compose logs --no-color "$1" >"$WORK/$1.log" 2>&1; cat "$WORK/$1.log"; }  # no SIGPIPE under pipefail
for i in $(seq 1 30); do
  logs_of agent | grep -c "DIRECTOR_REDIS_PASSWORD is not set" >/dev/null && break
  [ "$i" = 30 ] && die "the agent without credentials does not say what to do"
  sleep 1
done
log "the agent without Redis credentials says how to get them"

TOKEN=$(compose exec -T web python manage.py create_token admin --name compose-test | tail -1 | tr -d '\r')
python3 scripts/compose_smoke.py create "$BASE" "$ADMIN_PASSWORD" "$TOKEN" "$DIRECTOR"

# the director's own Redis user: issued once, then the agent runs with it (as README/.env.example say)
PASS=$(compose exec -T web python manage.py director_credentials "$DIRECTOR" 2>/dev/null | tail -1 | tr -d '\r')
[ ${#PASS} -ge 32 ] || die "director_credentials printed no password"
sed -i "s/^DIRECTOR_REDIS_PASSWORD=.*/DIRECTOR_REDIS_PASSWORD=$PASS/" "$WORK/.env"
compose up -d agent >>"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; die "compose up -d agent failed"; }
redis_as() {  # user password command...: redis-cli in the Redis container as that user
  local user=$1 pw=$2; shift 2
  compose exec -T -e REDISCLI_AUTH="$pw" redis redis-cli --no-auth-warning --user "$user" "$@" 2>&1 | tr -d '\r'
}
got=$(redis_as "director.$DIRECTOR" "$PASS" LLEN director.other)
echo "$got" | grep -q NOPERM || die "director.$DIRECTOR may read another director's queue: $got"
got=$(redis_as "director.$DIRECTOR" "$PASS" GET umw:events:cursors)
echo "$got" | grep -q NOPERM || die "director.$DIRECTOR may read central keys: $got"
got=$(redis_as default "" PING)
echo "$got" | grep -q PONG && die "Redis answers without a user and password"
log "Redis: director.$DIRECTOR is refused other queues and central keys; no default user"
python3 scripts/compose_smoke.py agent "$BASE" "$TOKEN" "$DIRECTOR"
[ "$(docker inspect -f '{{.State.Running}}' "$(compose ps -q agent)")" = true ] || die "service agent is not running"

logs_of agent | grep -c "ERROR director.agent: IPVS is not available in this kernel" >/dev/null \
  || die "the agent's log does not say that IPVS is missing"
logs_of worker | grep -c "Task clusters.ingest_events" >/dev/null || die "the central worker ran no ingest task"
logs_of beat | grep -c "Scheduler: Sending due task" >/dev/null || die "beat sent no task"
log "agent log names the missing module; worker ran the ingest tasks beat sent"
log "PASSED in $(( $(date +%s) - started )) s"
