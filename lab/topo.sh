# Sourced by guest-init.sh: the classic Ultra Monkey topology, private to the guest kernel.
#   netns client 172.16.10.100/24 --veth-- wan 172.16.10.2/24 (director; the agent adds the VIP 172.16.10.52)
#   lan bridge 192.168.1.1/24 --veth-- netns rs1 192.168.1.4 / rs2 192.168.1.5 (default route via .1)
# rs1/rs2 run lab/rsd.py: HTTP on :80 and a line service on :5500, one process each (so a test can stop one).
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.conntrack=1 2>/dev/null
for ns in client rs1 rs2; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add wan type veth peer name eth0 netns client
ip addr add 172.16.10.2/24 dev wan && ip link set wan up
ip -n client addr add 172.16.10.100/24 dev eth0 && ip -n client link set eth0 up
ip link add lan type bridge && ip addr add 192.168.1.1/24 dev lan && ip link set lan up
i=4
for ns in rs1 rs2; do
  ip link add v$ns type veth peer name eth0 netns $ns
  ip link set v$ns master lan up
  ip -n $ns addr add 192.168.1.$i/24 dev eth0 && ip -n $ns link set eth0 up
  ip -n $ns route add default via 192.168.1.1
  for what in http tcp; do
    if [ $what = http ]; then ports="--http-port 80 --tcp-port 0"; else ports="--http-port 0 --tcp-port 5500"; fi
    # shellcheck disable=SC2086
    (ip netns exec $ns "$PY" "$LAB_REPO/lab/rsd.py" $ns $ports --pidfile /run/rsd-$ns-$what.pid \
      </dev/null >>/run/rsd-$ns-$what.log 2>&1 &)
  done
  i=$((i + 1))
done
# python starts slowly inside UML: wait (bounded) until every real-server listener is up
for ns in rs1 rs2; do
  for port in 80 5500; do
    for _ in $(seq 200); do [ -n "$(ip netns exec $ns ss -ltnH "sport = :$port")" ] && break; sleep 0.1; done
  done
done
