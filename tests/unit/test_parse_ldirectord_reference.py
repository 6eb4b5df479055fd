"""Our ldirectord.cf reading against ldirectord's own, where its source is at hand.

Point LDIRECTORD_SOURCE at ldirectord (the installed /usr/sbin/ldirectord, or ldirectord/ldirectord.in from
ClusterLabs resource-agents) and this test runs ldirectord's own read_config and ld_setup under perl on the
corpus, with name lookups answered from the corpus hosts map only, and collects the ipvsadm commands
ldirectord would run once every real server is up (`-A <flags>`, then `-a ... -r server:port <fwd> -w N`).
Those commands go through our ipvsadm reader (ipvsadm's own defaults and port rules) and must give the same
table as our ldirectord import; for the malformed corpus, ldirectord's first error must be our first error.
Nothing of ldirectord is copied here: the subs are taken from the file at run time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from clusters.exporters import export
from clusters.importers import ipvsadm, ldirectord
from tests.configs import CONFIGS, HOSTS, parse_file

SOURCE = os.environ.get("LDIRECTORD_SOURCE") or "/usr/sbin/ldirectord"
pytestmark = pytest.mark.skipif(
    not (Path(SOURCE).is_file() and shutil.which("perl")),
    reason="set LDIRECTORD_SOURCE to ldirectord's perl source (and have perl) to compare with ldirectord itself",
)

SUBS = (
    "set_defaults", "parse_emailalertstatus", "read_emailalert", "read_config", "_ld_read_config_virtual_resolve",
    "ld_port_to_service", "ld_service_to_port", "ld_checkport", "_ld_read_config_fallback_resolve",
    "_ld_read_config_real_resolve", "add_real_server_range", "add_real_server", "parse_fallback", "ld_setup",
    "is_octet", "is_ip", "ip_to_int", "int_to_ip", "get_virtual", "get_virtual_option", "get_real_id_str",
    "get_virtual_id_str", "get_forward_flag", "ld_getservbyname", "ld_gethostservbyname",
)  # fmt: skip

HARNESS = r"""
use Socket qw(AF_INET AF_INET6 inet_pton);
our (%HOSTS, $HOSTNAME, $CONFIG);
$HOSTNAME = "director";
sub config_warn { my ($line, $msg) = @_; }
sub config_error { my ($line, $msg) = @_; $msg =~ s/\s+$//; die "ERROR $line $msg\n"; }
sub ld_openlog { return 0; }
sub ld_gethostbyname {
    my ($name, $af) = @_;
    $name = $1 if $name =~ /^\[(.*)\]$/;
    my $six = ($af == AF_INET6);
    if (inet_pton($six ? AF_INET6 : AF_INET, $name)) { return $six ? "[$name]" : $name; }
    for my $a (@{ $HOSTS{lc $name} || [] }) {
        if ($six && $a =~ /:/) { return "[$a]"; }
        if (!$six && $a !~ /:/) { return $a; }
    }
    return undef;
}
open(my $h, "<", $ARGV[1]) or die;
while (<$h>) { s/#.*//; my @w = split; next if @w < 2; my $a = shift @w; push @{ $HOSTS{lc $_} }, $a for @w; }
$CONFIG = $ARGV[0];
eval { read_config(); ld_setup(); 1 } or do { print $@; exit 0; };
for my $v (@VIRTUAL) {
    print "-A $$v{flags}\n";
    next if $$v{checktype} eq "off";
    for my $r (@{ $$v{real} }) {
        my $u = defined $$r{"u-threshold"} ? $$r{"u-threshold"} : 0;
        my $l = defined $$r{"l-threshold"} ? $$r{"l-threshold"} : 0;
        print "-a $$v{proto} " . get_virtual_option($v) . " -x $u -y $l -r $$r{server}:$$r{port} $$r{forw} -w $$r{weight}\n";
    }
}
"""


def _harness(tmp_path: Path) -> Path:
    source = Path(SOURCE).read_text(errors="replace")
    # monitorfile= makes ldirectord append to that file while parsing: not here.
    source = source.replace('open(MONITORFILE, ">>$monitorfile") and close(MONITORFILE)', "1")
    subs = []
    for name in SUBS:
        m = re.search(rf"^sub {re.escape(name)}\s*\n?\{{.*?^\}}", source, re.S | re.M)
        assert m, f"sub {name} not found in {SOURCE}"
        subs.append(m.group(0))
    script = tmp_path / "ldirectord-reference.pl"
    script.write_text(HARNESS + "\n" + "\n\n".join(subs) + "\n")
    return script


def _ldirectord(tmp_path: Path, config: Path) -> str:
    """What ldirectord makes of `config`: its ipvsadm commands, or `ERROR <line> <message>`."""
    proc = subprocess.run(
        ["perl", str(_harness(tmp_path)), str(config), str(CONFIGS / "hosts")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    "names",
    [
        ["ldirectord-ultramonkey.cf"],
        ["ldirectord-full.cf", "ldirectord-extra.cf"],  # execute= starts a second instance
        ["ldirectord-every-directive.cf"],
    ],
)
def test_it_builds_the_table_ldirectord_builds(tmp_path, names):
    commands = "".join(_ldirectord(tmp_path, CONFIGS / name) for name in names)
    assert "ERROR" not in commands, commands
    theirs = ipvsadm.parse(commands)
    assert theirs.ok, [str(m) for m in theirs.errors]
    ours = parse_file(names[0])
    assert export(ours.services, "ipvsadm") == export(theirs.services, "ipvsadm")


def test_it_stops_at_the_error_ldirectord_stops_at(tmp_path):
    out = _ldirectord(tmp_path, CONFIGS / "ldirectord-bad.cf")
    m = re.match(r"ERROR (\d+) (.*)", out)
    assert m, out
    first = parse_file("ldirectord-bad.cf").errors[0]
    assert first.line == int(m.group(1))


# Small files on which ldirectord and we must agree: the same table, or a refusal at the same line.
SNIPPETS = [
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treal=10.0.0.3:80 masq 5\n",
    "virtual=10.0.0.1:53\n\treal=10.0.0.2:53 gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:8080 gate\n\treal=10.0.0.3:8080 masq\n",
    "virtual=5\n\treal=10.0.0.2 gate\n\treal=10.0.0.3:80 masq\n",
    "virtual=10.0.0.1\n\treal=10.0.0.2 gate\n",
    "checktimeout=3 // seconds\nvirtual=10.0.0.1:80 // web\n\treal=10.0.0.2:80 gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate // web1\n",
    "quiescent=no # later\n",
    "quiescent=no \nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate   # first\n# a comment\n\tscheduler=rr\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\n\tscheduler=rr\n",
    "virtual=10.0.0.1:80\n    real=10.0.0.2:80 gate\n   scheduler=rr\n",
    'virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\treceive="ok" // body\n',
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tscheduler=rr // round robin\n\tpersistent=60 // a minute\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tpersistent=60\n\tnetmask=255.255.0.0\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tnetmask=255.255.0.0\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tprotocol=udp\n\tops=yes\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=off\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2->10.0.0.4:80 gate 3 l:1 u:9\n",
    "virtual=10.0.0.100:80\n\treal=10.0.0.9->10.0.0.1:80 gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 nat\n",
    "virtual=10.0.0.1:80\n\treal6=[::1]:80 gate\n",
    "virtual=[2001:db8::1]:80\n\treal=10.0.0.2:80 gate\n",
    "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]:80 masq 2\n\tfallback6=[::1]:80\n",
    "virtual=1\n\treal=10.0.0.2 gate\n\tprotocol=tcp\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tprotocol=fwm\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\trequest=index.html\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=sometimes\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tservice=gopher\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tcheckport=70000\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\nvirtual=10.0.0.1:80\n\treal=10.0.0.3:80 gate\n",
    "virtual=lvs.example.com:http\n\treal=web1:http masq\n\treal=web2 masq\n",
    "virtual=10.0.0.1:80\n\treal=nosuchhost:80 masq\n",
    "logfile=/var/log/ld.log\n",
    "connecttimeout=5\n",
    "emailalertstatus=none,all\n",
    "autoreload=yes\nfork=yes\nsupervised\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tchecktype=negotiate // since 2004\n",
    "virtual=10.0.0.1:80\r\n\treal=10.0.0.2:80 gate\r\n",
    "quiescent=no\r\nvirtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tfallback=127.0.0.1:80 gate // sorry\n",
    "virtual=10.0.0.1:http\n\treal=10.0.0.2:www gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 ipip 0\n",
    'virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate 2 "index.html", "ok"\n',
    "checkinterval=0\n",
    "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]:80 masq\n\tnetmask=64\n\tpersistent=10\n",
    "virtual6=1\n\treal6=[2001:db8::2] gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tschedflags=sh-port\n\tscheduler=sh\n",
    "virtual=10.0.0.1:80\n\treal=sql01->sql03:80 gate\n",
    "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n\tquiescent=yes\n\tfailurecount=0\n",
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_it_agrees_with_ldirectord_on_small_files(tmp_path, text):
    config = tmp_path / "snippet.cf"
    config.write_text(text)
    theirs = _ldirectord(tmp_path, config)
    ours = ldirectord.parse(text, filename="snippet.cf", hosts=HOSTS)
    if theirs.startswith("ERROR"):
        assert ours.errors, theirs
        if "duplicate virtual server" in theirs:
            # ldirectord names the last line of the duplicate's section; we name its virtual= line.
            assert "duplicate virtual server" in ours.errors[0].text
        else:
            assert ours.errors[0].line == int(theirs.split()[1]), (theirs, [str(m) for m in ours.errors])
    else:
        assert ours.ok, (theirs, [str(m) for m in ours.errors])
        assert export(ours.services, "ipvsadm") == export(_kernel(ipvsadm.parse(theirs).services), "ipvsadm")


def _kernel(services):
    """A NAT real server added with port 0 is served on the virtual port (ip_vs_schedule); we store that port."""
    for s in services:
        for r in s.reals:
            if s.protocol != "fwmark" and r.port == 0:
                r.port = s.port
    return services
