#!/bin/sh
# PID 1 of a lab guest (a UML kernel whose root is the host's / through hostfs, read-only).
# Kernel command line gives: LAB_NAME, LAB_IP (100.64.0.x), LAB_MODE (director|pytest|exec), LAB_DIR, LAB_REPO.
#   director: classic topology + the project's director agent (supervised) + the lab control worker
#   pytest / exec: classic topology, then run what $LAB_DIR/run/$LAB_NAME.args says; its status is ours
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/run/home TMPDIR=/run/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN=$LAB_DIR/run
PY=$LAB_REPO/.venv/bin/python
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmpfs /run            # guest-private scratch; /tmp stays the host's (read-only)
mount -t hostfs -o "$RUN" none "$RUN"  # the only writable host directory
mkdir -p /run/netns /run/home /run/tmp
# no DNS query may leave the lab (the host's resolv.conf is visible through hostfs): local-only resolver files
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >/run/resolv.conf
printf '127.0.0.1 localhost %s\n' "$LAB_NAME" >/run/hosts
mount --bind /run/resolv.conf /etc/resolv.conf
mount --bind /run/hosts /etc/hosts
hostname "$LAB_NAME"
t() { echo "[$LAB_NAME $(cut -d' ' -f1 /proc/uptime)s] $*"; }
finish() {
  echo "$1" >"$RUN/$LAB_NAME.rc"
  echo "$1" >/proc/exitcode  # UML: becomes linux.uml's exit status on the host
  sync; halt -f -d; echo o >/proc/sysrq-trigger; sleep 5
}
t "init"
ip link set lo up
ip addr add "$LAB_IP/24" dev eth0 && ip link set eth0 up
# this UML kernel has nf_tables but no nat chain type (nft_chain_nat): masquerade falls back to iptables
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed \
  ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh ip_vs_twos ip_vs_ftp ip_vs_pe_sip nf_tables nft_masq nf_nat \
  ip_tables iptable_nat iptable_filter xt_MASQUERADE xt_comment xt_mark iptable_mangle ip6_tables ip6table_nat \
  veth bridge ipip ip6_tunnel tun; do
  modprobe -q -d "$LAB_DIR/umlroot" "$m" 2>/dev/null
done
if [ ! -e /proc/net/ip_vs ]; then
  # without IPVS every kernel test would only skip and the tier would look green: a guest that cannot load
  # it is a broken lab, and pytest / exec guests stop here with a failure (a director guest's agent reports
  # its own apply errors on the page)
  t "FATAL: ip_vs did not load (modules under $LAB_DIR/umlroot?)"
  case "$LAB_MODE" in pytest | exec) finish 3 ;; esac
fi
. "$LAB_REPO/lab/topo.sh"
date +%s.%N >"$RUN/$LAB_NAME.topo"
t "topology ready"

case "$LAB_MODE" in
director)
  cd "$LAB_REPO" || finish 1
  # lab control worker (tests' hands in the guest), on the lab's own Redis so it survives product-Redis faults
  (cd lab && LAB_SIDE=guest UMW_LAB_DIR=$LAB_DIR exec $PY -m celery -A labtasks worker -Q "lab.$LAB_NAME" \
    -P solo -c 1 -n "lab@$LAB_NAME" --without-gossip --without-mingle --without-heartbeat -l WARNING \
    >>"$RUN/$LAB_NAME.labctl.log" 2>&1) &
  if [ "$(cat "$RUN/$LAB_NAME.traffic" 2>/dev/null)" = 1 ]; then
    ($PY lab/traffic.py >>"$RUN/$LAB_NAME.traffic.log" 2>&1) &
  fi
  # the agent, supervised like systemd's Restart=always would (bounded: at most 1000 restarts)
  i=0
  while [ $i -lt 1000 ] && [ ! -f /run/agent.stop ]; do
    # lab control (labtasks.agent_stop) keeps the agent down while /run/agent.hold exists (bounded: 1 h)
    j=0
    while [ -f /run/agent.hold ] && [ $j -lt 18000 ]; do sleep 0.2; j=$((j + 1)); done
    $PY -m director run --name "$LAB_NAME" --redis redis://100.64.0.1:6379/0 --state-dir "$RUN/$LAB_NAME" \
      --redis-password-file "$RUN/$LAB_NAME.redis-pass" --trust "$RUN/central.pub" \
      --loglevel "${UMW_LOGLEVEL:-INFO}" >>"$RUN/$LAB_NAME.agent.log" 2>&1
    t "agent exited ($?), restarting"
    i=$((i + 1))
    sleep 0.5
  done
  finish 0
  ;;
pytest)
  cd "$LAB_REPO" || finish 1
  # shellcheck disable=SC2046
  set -- $(cat "$RUN/$LAB_NAME.args")
  $PY -m pytest -p no:cacheprovider --color=no "$@"
  finish $?
  ;;
exec)
  cd "$LAB_REPO" || finish 1
  PATH=$LAB_REPO/.venv/bin:$PATH sh -c "$(cat "$RUN/$LAB_NAME.args")"
  finish $?
  ;;
*)
  t "unknown LAB_MODE=$LAB_MODE"
  finish 2
  ;;
esac
