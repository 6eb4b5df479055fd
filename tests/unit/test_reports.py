"""clusters/reports.py: whatever an agent (or anyone with Redis access) writes, the check answers or refuses."""

import json
import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from clusters import reports

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
# snapshot-like values: the real keys, with anything under them
dests = st.dictionaries(
    st.text(max_size=6),
    st.fixed_dictionaries(
        {}, optional={k: json_values for k in ("active", "weight", "stats", "health", "port")}
    ),
    max_size=3,
)
snapshots = st.fixed_dictionaries(
    {"time": st.one_of(st.floats(1, 2e9), json_values)},
    optional={
        "revision": json_values,
        "drift": json_values,
        "ha": json_values,
        "services": st.dictionaries(
            st.text(max_size=6),
            st.one_of(json_values, st.fixed_dictionaries({"dests": dests}, optional={"stats": json_values})),
            max_size=3,
        ),
    },
)


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, float):
        yield value


@settings(max_examples=400, deadline=None)
@given(st.one_of(snapshots, json_values))
# found by Hypothesis: a non-finite number in a drift entry
@example({"time": 1.0, "drift": [{"": math.inf}]})
def test_it_reads_any_json_as_a_clean_snapshot_or_a_problem(value):
    raw = json.dumps(value)
    out = reports.read(raw, "snapshot", reports.snapshot)
    if value is None:
        assert out is None  # JSON null: nothing reported
        return
    assert isinstance(out, dict)
    if reports.PROBLEM in out and "time" not in out:
        return  # refused whole, with the reason
    assert isinstance(out["time"], float) and out["time"] >= 1
    assert all(math.isfinite(n) for n in _numbers(out))
    for svc in out["services"].values():
        for d in svc["dests"].values():
            assert isinstance(d["active"], int) and d["active"] >= 0
            assert d["health"]["up"] in (True, False, None)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values.map(json.dumps), st.text(max_size=30), st.just("[" * 50_000)))
def test_it_reads_any_text_as_a_heartbeat_or_a_problem(raw):
    out = reports.read(raw, "heartbeat", reports.heartbeat)
    assert out is None or reports.PROBLEM in out or (math.isfinite(out["time"]) and out["time"] >= 1)


def test_it_names_what_is_wrong():
    assert reports.read('{"time": "soon"}', "heartbeat", reports.heartbeat) == {
        reports.PROBLEM: "heartbeat time is not a number: 'soon'"
    }
    assert reports.read("[[[", "heartbeat", reports.heartbeat) == {
        reports.PROBLEM: "heartbeat is not JSON (JSONDecodeError)"
    }


# -- the per-service layout (director/keys.py, format 2): meta record + one record per service ---------------
metas = st.fixed_dictionaries(
    {"format": st.one_of(st.just(2), json_values), "time": st.one_of(st.floats(1, 2e9), json_values)},
    optional={"revision": json_values, "drift": json_values, "ha": json_values, "count": json_values},
)
fields = st.dictionaries(
    st.text(max_size=8),
    st.one_of(
        st.text(max_size=12),
        st.just("[" * 50_000),
        json_values.map(json.dumps),
        st.fixed_dictionaries({"dests": dests}, optional={"stats": json_values}).map(json.dumps),
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(metas.map(json.dumps), json_values.map(json.dumps), st.text(max_size=20)), fields)
def test_it_reads_any_meta_and_records_as_clean_stats_or_a_problem(meta, records):
    out = reports.stats(meta, records)
    if out is None:
        return
    assert isinstance(out, dict)
    if set(out) == {reports.PROBLEM}:
        return
    assert math.isfinite(out["time"]) and out["time"] >= 1
    for sid, svc in out["services"].items():
        assert sid in records and isinstance(svc["dests"], dict)
    assert all(math.isfinite(x) and x >= 0 for x in _numbers(out["services"]))


def test_it_keeps_the_good_records_and_names_the_bad_one():
    good = {"label": "TCP 10.0.0.1:80", "stats": {"conns": 4}, "dests": {"d1": {"address": "10.1.1.1"}}}
    out = reports.stats(
        json.dumps({"format": 2, "time": 1e9, "revision": 3, "drift": []}),
        {"tcp|10.0.0.1|80": json.dumps(good), "tcp|10.0.0.2|80": "{not json"},
    )
    assert out["revision"] == 3 and list(out["services"]) == ["tcp|10.0.0.1|80"]
    assert out["services"]["tcp|10.0.0.1|80"]["dests"]["d1"]["active"] == 0  # left out = zero
    assert "1 unreadable record(s)" in out[reports.PROBLEM]


def test_it_reads_an_older_agents_whole_snapshot():
    snap = {"time": 1e9, "services": {"s": {"dests": {"d": {"active": 2}}}}}
    assert reports.stats(json.dumps(snap), {})["services"]["s"]["dests"]["d"]["active"] == 2
    assert reports.stats(None, {}) is None
    assert set(reports.stats(json.dumps({"format": 3, "time": 1e9}), {})) == {reports.PROBLEM}


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(metas.map(json.dumps), json_values.map(json.dumps), st.text(max_size=20), st.just("[" * 50_000))
)
def test_it_reads_the_history_times_of_any_meta_or_none(meta):
    until, epoch = reports.history_times(meta)
    assert math.isfinite(until) and until >= 0 and (epoch is None or math.isfinite(epoch))


def _stats_one_by_one(value):
    """What reports._stats answers without its whole-dict fast path: each value through `number`."""
    stats = reports._dict(value, "stats")
    if len(stats) > 64:
        raise reports.BadReport("too many")
    return {str(k)[:40]: reports.number(v, f"stats {str(k)[:40]}") for k, v in stats.items()}


numbers = st.one_of(
    st.integers(-5, 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.just(10**400),
    st.just(-0.0),
)


@settings(max_examples=500)
@given(st.dictionaries(st.one_of(st.text(max_size=50), st.integers()), numbers, max_size=8))
@example({"a": 1, "b": float("nan")})
@example({"a": 10**400, "b": 1.5})
@example({"x" * 41: 1})
def test_it_checks_counters_as_a_whole_exactly_as_one_by_one(stats):
    try:
        expected = _stats_one_by_one(stats)
    except reports.BadReport:
        expected = reports.BadReport
    try:
        got = reports._stats(stats, "stats")
    except reports.BadReport:
        got = reports.BadReport
    assert got == expected
    if isinstance(got, dict):
        assert all(type(v) is float and math.isfinite(v) and v >= 0 for v in got.values())
