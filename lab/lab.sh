#!/usr/bin/env bash
# The Ultra Monkey Web lab: real Linux 6.1 kernels with IPVS (Debian's user-mode-linux) as lab directors,
# on any machine, with nothing touching the host's own network.
#
#   root netns (host)                   netns umwlab (ours, no uplink)           UML guest labK (own kernel)
#   dashboard, central worker --unix--> redis 100.64.0.1:6379 (product)  <--TCP-- director agent (queue director.labK)
#   tests (lab control)       --unix--> redis 100.64.0.1:6380 (lab ctl)  <--TCP-- lab worker (queue lab.labK)
#                                       bridge umwbr 100.64.0.1/24 --umwtapK-- eth0 100.64.0.(K+1)
#   inside every guest: netns client 172.16.10.100 -- director wan 172.16.10.2 (VIP 172.16.10.52 is put
#   there by the agent) -- lan bridge 192.168.1.1 -- netns rs1 192.168.1.4 / rs2 192.168.1.5 (HTTP :80, line :5500)
#
# usage: lab.sh up [N] [--traffic]   N lab directors running the project's agent (lab1..labN)
#        lab.sh down                  stop guests (mconsole halt, then their process groups), Redis, namespace
#        lab.sh status
#        lab.sh pytest [ARGS...]      one-shot guest: topology + `pytest ARGS` (default tests/kernel); exit = pytest's
#        lab.sh exec 'COMMAND'        one-shot guest: topology + COMMAND from the repo root; exit = COMMAND's
#        lab.sh redis-stop | redis-start   stop/start the product Redis (fault tests; data kept on disk)
#        lab.sh halt NAME             halt one guest at once (mconsole halt: nothing inside gets to clean up)
#        lab.sh central-url           the product Redis URL for the central side (user central + its password)
# Secrets (made by `up`, removed by `down`): $RUN/redis-central.pass, $RUN/labK.redis-pass (director.labK's
# Redis password), $RUN/signing (the dashboard's signing key ring), $RUN/central.pub (what the agents trust).
# Env: UMW_LAB_DIR (/tmp/umw-lab), LAB_NS (umwlab), LAB_MEM (384M), LAB_UML_TMP (/dev/shm), LAB_READY_TIMEOUT (120),
#      LAB_GUEST_TIMEOUT (1800, one-shot guests), LAB_PIN (0; 1 pins each guest to one CPU).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAB=${UMW_LAB_DIR:-/tmp/umw-lab}
RUN=$LAB/run
NS=${LAB_NS:-umwlab} BR=umwbr  # LAB_NS + UMW_LAB_DIR: a second, independent lab
MEM=${LAB_MEM:-384M}
UML_TMP=${LAB_UML_TMP:-/dev/shm}
READY_TIMEOUT=${LAB_READY_TIMEOUT:-120}
log() { echo "[lab $(date +%T.%3N)] $*" >&2; }
now() { date +%s.%N; }

need_root() { [ "$(id -u)" = 0 ] || { log "the lab needs root (network namespaces, taps)"; exit 1; }; }
need_uml() { command -v linux.uml >/dev/null || { log "linux.uml missing: apt-get install user-mode-linux"; exit 1; }; }
# On a host CPU with AMX, Debian 12's UML dies at boot ("ptrace set fp regs failed, errno = 14"): linux.uml then
# runs with lab/uml-xstate.c preloaded (built here once, by the cc the bootstrap installs; see the file for why).
uml_preload() {
  grep -qw amx_tile /proc/cpuinfo || return 0
  local so="$LAB/uml-xstate.so"
  if [ ! -e "$so" ] || [ "$REPO/lab/uml-xstate.c" -nt "$so" ]; then
    mkdir -p "$LAB"
    cc -O2 -shared -fPIC -o "$so.tmp" "$REPO/lab/uml-xstate.c" -ldl && mv "$so.tmp" "$so" ||
      { log "cannot build $so (cc missing?): UML cannot boot on this AMX CPU without it"; return 1; }
  fi
  echo "LD_PRELOAD=$so"
}

net_up() {
  mkdir -p "$RUN/uml" "$LAB/umlroot/lib"
  [ -e "$LAB/umlroot/lib/modules" ] || ln -s /usr/lib/uml/modules "$LAB/umlroot/lib/modules"  # modprobe -d
  ip netns list | grep -qx "$NS\( .*\)\?" || ip netns add $NS
  ip -n $NS link set lo up
  if ! ip -n $NS link show $BR >/dev/null 2>&1; then
    ip -n $NS link add $BR type bridge
    ip -n $NS addr add 100.64.0.1/24 dev $BR
    ip -n $NS link set $BR up
  fi
}

secret() {  # file: a random password in it (made once, mode 0600)
  [ -s "$1" ] || (umask 077; head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$1")
}
ping_redis() {  # sockname: PONG from it (the product Redis as the central user: it has no default user)
  if [ "$1" = redis ]; then
    REDISCLI_AUTH=$(cat "$RUN/redis-central.pass") redis-cli --no-auth-warning --user central -s "$RUN/redis.sock" ping 2>/dev/null | grep -q PONG
  else redis-cli -s "$RUN/$1.sock" ping 2>/dev/null | grep -q PONG; fi
}
redis_one() {  # port sockname [extra args]: a Redis inside our namespace, TCP for guests, a unix socket for us
  local port=$1 sock=$2; shift 2
  if [ -S "$RUN/$sock.sock" ] && ping_redis "$sock"; then return 0; fi
  ip netns exec $NS redis-server --bind 100.64.0.1 --port "$port" --protected-mode no \
    --unixsocket "$RUN/$sock.sock" --unixsocketperm 770 --daemonize yes \
    --pidfile "$RUN/$sock.redis-pid" --logfile "$RUN/$sock.log" --dir "$RUN" "$@"
  for _ in $(seq 100); do ping_redis "$sock" && return 0; sleep 0.05; done
  log "redis ($sock) did not come up, see $RUN/$sock.log"; return 1
}
redis_product() {
  # the product Redis keeps an append-only file so a restart (fault test) loses no event or queued task.
  # ACLs as in production (director/acl.py): no default user, the central user by password, and one user per
  # lab director (director.labK, password in $RUN/labK.redis-pass) that may touch only that director's keys.
  local rules
  secret "$RUN/redis-central.pass"
  rules=$(cd "$REPO" && "$REPO/.venv/bin/python" -c 'from director import acl; print(" ".join(acl.CENTRAL_RULES))') || return 1
  set -f  # the rules hold globs (~* &*)
  # shellcheck disable=SC2086
  redis_one 6379 redis --appendonly yes --appendfilename redis.aof --appendfsync everysec --save '' \
    --user default off --user central ">$(cat "$RUN/redis-central.pass")" $rules
  local rc=$?
  set +f
  [ $rc = 0 ] || return 1
  # users made at run time are not in the append-only file: (re)make the lab directors' after every start
  local f
  for f in "$RUN"/lab*.redis-pass; do [ -e "$f" ] && { director_user "$(basename "$f" .redis-pass)" || return 1; }; done
  return 0
}
central_url() { echo "unix://central:$(cat "$RUN/redis-central.pass")@$RUN/redis.sock"; }
director_user() {  # name: its password file and its Redis ACL user
  secret "$RUN/$1.redis-pass"
  (cd "$REPO" && UMW_REDIS_URL=$(central_url) "$REPO/.venv/bin/python" -m director redis-user --name "$1" \
    --password-file "$RUN/$1.redis-pass") || { log "cannot make the Redis user of $1"; return 1; }
}
signing_up() {  # the central signing key ring of the lab's dashboard, and the public key the agents trust
  # (what `manage.py signing_key show` prints, without needing the dashboard's settings)
  (cd "$REPO" && "$REPO/.venv/bin/python" -c 'import sys; from director import signing
print(signing.public_line(signing.KeyRing(sys.argv[1]).ensure().public_key()))' "$RUN/signing") >"$RUN/central.pub.tmp" &&
    mv "$RUN/central.pub.tmp" "$RUN/central.pub" || { log "cannot make the signing key"; return 1; }
}
redis_up() {
  redis_product || return 1
  redis_one 6380 ctl --appendonly no --save ''
}
redis_down() {  # sockname
  local sock=$1 pid
  [ -f "$RUN/$sock.redis-pid" ] || return 0
  pid=$(cat "$RUN/$sock.redis-pid")
  kill "$pid" 2>/dev/null  # SIGTERM: Redis shuts down cleanly (the append-only file is synced)
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$RUN/$sock.redis-pid" "$RUN/$sock.sock"
}

tap_up() {  # idx; a tap serves one UML only: refuse a busy one
  local tap=umwtap$1
  if ip -n $NS link show $tap 2>/dev/null | grep -q LOWER_UP; then log "$tap is in use by another guest"; return 1; fi
  ip -n $NS link show $tap >/dev/null 2>&1 || ip netns exec $NS ip tuntap add $tap mode tap
  ip -n $NS link set $tap master $BR up
}

guest_start() {  # name idx mode -> linux.uml in the background (own process group), pid in $RUN/name.pid
  local name=$1 idx=$2 mode=$3
  local ip=100.64.0.$((idx + 1)) mac
  mac=$(printf 'fe:fd:64:40:00:%02x' $((idx + 1)))
  tap_up "$idx" || return 1
  local preload
  preload=$(uml_preload) || return 1
  local need=${MEM%M} avail
  avail=$(df -m --output=avail "$UML_TMP" | tail -1)
  [ "$avail" -gt "$need" ] || { log "only ${avail}MiB free in $UML_TMP for mem=$MEM"; return 1; }
  rm -f "$RUN/$name".{topo,rc,console,labctl}
  rm -rf "${RUN:?}/uml/$name"
  (
    ulimit -c 0
    cd "$RUN" || exit 1
    pin=""
    [ "${LAB_PIN:-0}" = 1 ] && pin="taskset -c $((idx % $(nproc)))"
    # shellcheck disable=SC2086
    exec ip netns exec $NS env TMPDIR="$UML_TMP" $preload setsid $pin linux.uml umid="$name" uml_dir="$RUN/uml" \
      mem="$MEM" root=/dev/root rootfstype=hostfs rootflags=/ ro init="$REPO/lab/guest-init.sh" \
      "eth0=tuntap,umwtap$idx,$mac" con0=fd:0,fd:1 con=null quiet panic=1 noreboot \
      LAB_NAME="$name" LAB_IP="$ip" LAB_MODE="$mode" LAB_DIR="$LAB" LAB_REPO="$REPO" \
      </dev/null >"$RUN/$name.console" 2>&1
  ) &
  echo $! >"$RUN/$name.pid"
}

guest_kill() {  # graceful mconsole halt, then TERM/KILL of the UML process group (pgid = main pid)
  local name=$1 pid
  pid=$(cat "$RUN/$name.pid" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    # uml_mconsole gets its reply on an abstract unix socket, which is per netns: run it in ours
    timeout 3 ip netns exec $NS uml_mconsole "$RUN/uml/$name/mconsole" halt >/dev/null 2>&1
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name: halt failed, SIGTERM to group $pid"; kill -TERM -- -"$pid" 2>/dev/null; sleep 1; }
  fi
  # UML helper processes outlive a killed main process and keep guest RAM and the tap: reap the group
  pgrep -g "$pid" >/dev/null 2>&1 && kill -KILL -- -"$pid" 2>/dev/null
  rm -f "$RUN/$name.pid"
  return 0
}

oneshot() {  # name idx mode timeout: run a one-shot guest, stream its console, return its exit status
  local name=$1 idx=$2 mode=$3 to=$4 pid rc end
  guest_start "$name" "$idx" "$mode" || return 1
  pid=$(cat "$RUN/$name.pid")
  tail -n +1 -F --pid="$pid" "$RUN/$name.console" 2>/dev/null &
  local tailpid=$!
  end=$(($(date +%s) + to))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: timeout after ${to}s"; guest_kill "$name"; wait "$pid" 2>/dev/null; rc=124
  else
    wait "$pid" 2>/dev/null; rc=$?
  fi
  sleep 0.3; kill "$tailpid" 2>/dev/null; wait "$tailpid" 2>/dev/null
  rm -f "$RUN/$name.pid"
  # linux.uml exits with what the guest wrote to /proc/exitcode; the guest also leaves it in a file
  [ -f "$RUN/$name.rc" ] && rc=$(cat "$RUN/$name.rc")
  return "$rc"
}

cmd_up() {
  local n=1 traffic=0 t0 k
  for a in "$@"; do case $a in --traffic) traffic=1 ;; *) n=$a ;; esac; done
  need_root; need_uml
  t0=$(now)
  net_up && redis_up || return 1
  [ -s "$RUN/central.pub" ] || signing_up || return 1
  for k in $(seq "$n"); do
    if [ -f "$RUN/lab$k.pid" ] && kill -0 "$(cat "$RUN/lab$k.pid")" 2>/dev/null; then
      log "lab$k already running"; continue
    fi
    director_user "lab$k" || return 1
    rm -rf "${RUN:?}/lab$k"; mkdir -p "$RUN/lab$k"   # the agent's state dir: a new lab starts clean
    echo "$traffic" >"$RUN/lab$k.traffic"
    guest_start "lab$k" "$k" director || return 1
  done
  for k in $(seq "$n"); do
    local end=$(($(date +%s) + READY_TIMEOUT))
    until [ -f "$RUN/lab$k.topo" ] && [ -f "$RUN/lab$k/agent.ready" ] && [ -f "$RUN/lab$k.labctl" ]; do
      kill -0 "$(cat "$RUN/lab$k.pid" 2>/dev/null || echo 0)" 2>/dev/null || { log "lab$k died, see $RUN/lab$k.console"; tail -30 "$RUN/lab$k.console" >&2; return 1; }
      [ "$(date +%s)" -ge "$end" ] && { log "lab$k not ready after ${READY_TIMEOUT}s, see $RUN/lab$k.console"; tail -30 "$RUN/lab$k.console" >&2; return 1; }
      sleep 0.1
    done
  done
  log "up: $n lab director(s) ready in $(echo "$(now) - $t0" | bc) s; Redis at unix://$RUN/redis.sock"
}

cmd_down() {
  local f n
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .pid)
    guest_kill "$n"
  done
  redis_down redis; redis_down ctl
  ip netns del $NS 2>/dev/null
  rm -rf "${RUN:?}/uml" "$RUN"/*.topo "$RUN"/*.labctl "$RUN"/redis.aof* "$RUN"/appendonlydir
  rm -rf "$RUN"/*.redis-pass "$RUN"/redis-central.pass "$RUN"/signing "$RUN"/central.pub "$RUN"/trusted_keys.json
  log "down"
}

cmd_status() {
  ip netns list | grep -q "^$NS" && echo "netns $NS: present" || echo "netns $NS: absent"
  for s in redis ctl; do printf '%s redis: ' "$s"; ping_redis "$s" && echo up || echo down; done
  local f n p
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .pid); p=$(cat "$f")
    if kill -0 "$p" 2>/dev/null; then
      echo "$n: pid $p, topology $([ -f "$RUN/$n.topo" ] && echo ready || echo no), agent $([ -f "$RUN/$n/agent.ready" ] && echo ready || echo no)"
    else echo "$n: dead"; fi
  done
}

cmd_oneshot() {  # mode args...: a fresh guest per call, so runs never see each other's kernel state
  local mode=$1; shift
  need_root; need_uml
  local fresh=0
  ip netns list | grep -qx "$NS\( .*\)\?" || fresh=1
  net_up && redis_up || return 1
  local name=t$$ idx
  idx=$((20 + $$ % 200))
  printf '%s\n' "$@" >"$RUN/$name.args"
  oneshot "$name" "$idx" "$mode" "${LAB_GUEST_TIMEOUT:-1800}"
  local rc=$?
  rm -f "$RUN/$name.args" "$RUN/$name.console" "$RUN/$name.rc"
  ip -n $NS link del "umwtap$idx" 2>/dev/null
  # leave nothing behind that this call started, unless other guests came to use it meanwhile
  if [ $fresh = 1 ] && ! ls "$RUN"/*.pid >/dev/null 2>&1; then cmd_down >/dev/null 2>&1; fi
  return $rc
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) need_root; cmd_down ;;
  status) cmd_status ;;
  pytest) shift; [ $# -eq 0 ] && set -- tests/kernel; cmd_oneshot pytest "$@" ;;
  exec) shift; cmd_oneshot exec "$@" ;;
  halt) need_root; [ -n "${2:-}" ] || { log "usage: lab.sh halt NAME"; exit 2; }; t=$(now); guest_kill "$2"; log "$2 halted"; echo "$t" ;;
  redis-stop) redis_down redis; log "product redis stopped" ;;
  redis-start) net_up && redis_product && log "product redis started" ;;
  central-url) central_url ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
