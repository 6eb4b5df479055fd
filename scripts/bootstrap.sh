#!/usr/bin/env bash
# Install what Ultra Monkey Web needs on a Debian/Ubuntu machine (as root), idempotently:
# Debian packages (Redis, user-mode-linux for the lab, ipvsadm/nftables, keepalived for director pairs; with --test
# also chromium, and ldirectord with its IPv6 helper, the oracles the importer and the kernel table are compared with),
# then the project's virtualenv in .venv. Safe to run on every `make run` / `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="python3 python3-venv python3-dev gcc redis-server redis-tools user-mode-linux uml-utilities ipvsadm nftables keepalived iproute2 procps kmod iptables bc curl"
# only for `make test`: the browser for Playwright, ldirectord (plus libnet-inet6glue-perl, which its HTTP
# checks of IPv6 real servers load) as the reference the importer and tests/kernel/test_daemon_oracle.py compare
# with, prometheus for promtool (the alert rules in deploy/prometheus are checked and unit-tested with it) and
# systemd for systemd-analyze (verify and security of deploy/ultramonkey-agent.service; nothing is started)
[ "${1:-}" = --test ] && PKGS="$PKGS chromium ldirectord libnet-inet6glue-perl prometheus systemd"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "bootstrap: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  # ldirectord is only a test oracle here: never leave its service enabled on the machine
  case " $missing " in *" ldirectord "*) command -v systemctl >/dev/null && systemctl disable --now ldirectord >/dev/null 2>&1 || true ;; esac
  # the same for prometheus: only promtool is wanted, never a Prometheus server left running
  case " $missing " in *" prometheus "*) command -v systemctl >/dev/null && systemctl disable --now prometheus >/dev/null 2>&1 || true ;; esac
  # keepalived runs only under the agent (its own config, pid files and namespace in the agent's state
  # directory): a system keepalived.service we just installed stays off, so it never holds a VIP of its own
  case " $missing " in *" keepalived "*) command -v systemctl >/dev/null && systemctl disable --now keepalived >/dev/null 2>&1 || true ;; esac
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[web,dev]'
  rm -f .venv/.installed-*; touch "$stamp"
fi
