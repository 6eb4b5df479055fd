"""director/records.py: the per-service records and deltas the reporter ships (issue 17, reporting in
proportion to change). A reader that applies every delta to the last full state holds the new full state."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from director import records
from director.ipvs.model import STAT_FIELDS

ids = st.text(alphabet="abc|12", min_size=1, max_size=5)
states = st.dictionaries(ids, st.text(max_size=6), max_size=8)


@settings(max_examples=500, deadline=None)
@given(states, states)
def test_it_turns_the_last_state_into_the_new_one_with_the_delta(last, new):
    changed, removed = records.delta(last, new)
    assert records.apply(last, changed, removed) == new
    assert all(last.get(sid) != text for sid, text in changed.items())  # only what changed is sent
    assert set(removed) == set(last) - set(new)


@settings(max_examples=200, deadline=None)
@given(st.lists(states, min_size=1, max_size=6))
def test_it_follows_a_chain_of_rounds(rounds):
    held: dict[str, str] = {}
    last: dict[str, str] = {}
    for new in rounds:
        held = records.apply(held, *records.delta(last, new))
        last = new
        assert held == new


counters = st.integers(0, 2**40)
dest_values = st.fixed_dictionaries(
    {
        "address": st.sampled_from(["192.168.1.4", "2001:db8::1"]),
        "port": st.integers(0, 65535),
        "in_kernel": st.booleans(),
        "weight": st.one_of(st.none(), st.integers(0, 65535)),
        "active": counters,
        "inactive": counters,
        "persistent": counters,
        "stats": st.dictionaries(st.sampled_from(["conns", "cps", "inbps", "outbps"]), counters),
        "health": st.fixed_dictionaries(
            {
                "up": st.sampled_from([True, False, None]),
                "reason": st.text(max_size=5),
                "latency": st.one_of(st.none(), st.floats(0, 10)),
                "checked": st.one_of(st.none(), st.floats(1, 2e9)),
            }
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.text(max_size=5), dest_values, max_size=4), st.dictionaries(st.just("conns"), counters)
)
def test_it_compacts_a_record_without_losing_a_value(dests, stats):
    record = {"label": "L", "stats": stats, "healthy": 1, "total": 2, "quorum": True, "dests": dests}
    small = records.compact(record)
    for did, dest in dests.items():
        d = small["dests"][did]
        for k in ("active", "inactive", "persistent"):
            assert d.get(k, 0) == dest[k]
        assert d.get("weight") == dest["weight"]  # a drained server's weight 0 stays
        assert (d["port"], d["in_kernel"], d["health"]["up"]) == (
            dest["port"],
            dest["in_kernel"],
            dest["health"]["up"],
        )
        assert {k: v for k, v in dest["stats"].items() if v} == d.get("stats", {})
    assert records.encode(small) == records.encode(records.compact(small))  # stable: compacting is idempotent


def test_it_fills_the_gaps_of_a_history_written_on_change():
    samples = [{"t": 100.0, "active": 1}, {"t": 106.0, "active": 3}]
    out = records.expand(samples, until=110.0, step=2.0, points=100)
    assert [(s["t"], s["active"]) for s in out] == [
        (100.0, 1), (102.0, 1), (104.0, 1), (106.0, 3), (108.0, 3), (110.0, 3)
    ]  # fmt: skip
    assert len(records.expand(samples, until=1e9, step=2.0, points=50)) == 50  # bounded, ends at `until`
    assert records.expand([], 10.0, 2.0, 10) == []


def _record(dests: dict, in_kernel: bool, conns: int) -> dict:
    stats = {k: 0 for k in STAT_FIELDS} | {"conns": conns} if in_kernel else {}
    full_dests = {}
    for did, d in dests.items():
        d = dict(d)
        d["stats"] = {k: 0 for k in STAT_FIELDS} | d["stats"] if d["in_kernel"] else {}
        full_dests[did] = d
    return {"label": "L", "scheduler": "wlc", "stats": stats, "healthy": 1, "total": 2, "quorum": True,
            "dests": full_dests}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=5), dest_values, max_size=4), st.booleans(), counters)
def test_it_gives_readers_back_exactly_the_record_it_compacted(dests, in_kernel, conns):
    record = _record(dests, in_kernel, conns)
    assert records.full(json.loads(records.encode(records.compact(record)))) == record


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=3)), lambda i: st.one_of(
    st.lists(i, max_size=3), st.dictionaries(st.sampled_from(["dests", "stats", "health", "in_kernel", "x"]), i,
                                             max_size=4)), max_leaves=20))  # fmt: skip
def test_it_never_raises_on_garbage_when_filling_a_record_in(value):
    records.full(value)


def test_it_takes_a_real_server_without_a_point_since_the_epoch_as_zero_then():
    before_restart = [{"t": 90.0, "active": 7}]  # the last point of the agent's previous run
    out = records.expand(before_restart, until=104.0, step=2.0, points=8, epoch=100.0)
    assert [(s["t"], s["active"]) for s in out] == [
        (90.0, 7), (92.0, 7), (94.0, 7), (96.0, 7), (98.0, 7), (100.0, 0), (102.0, 0), (104.0, 0)
    ][-8:]  # fmt: skip
    written_at_epoch = [*before_restart, {"t": 100.0, "active": 3}]
    assert records.expand(written_at_epoch, until=102.0, step=2.0, points=2, epoch=100.0)[-1]["active"] == 3
