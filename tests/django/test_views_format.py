"""Numbers and sparklines as the tables print them."""

from clusters.live import sparkline_points
from clusters.templatetags.umw import bytes_rate, compact, seconds, sparkline


def test_it_prints_compact_counts_and_byte_rates():
    assert [compact(x) for x in (0, 12, 999, 1234, 2_500_000)] == ["0", "12", "999", "1.2k", "2.5M"]
    assert [bytes_rate(x) for x in (0, 512, 2048, 5 * 1024**2)] == [
        "0 B/s",
        "512 B/s",
        "2.0 KiB/s",
        "5.0 MiB/s",
    ]
    assert seconds(0.0123) == "12 ms" and seconds(None) == ""


def test_it_keeps_a_spike_when_downsampling():
    values = [0.0] * 1800
    values[901] = 50.0
    points = sparkline_points(values, width=120, height=24, max_points=120).split()
    assert len(points) == 120
    assert min(float(p.split(",")[1]) for p in points) == 1.0  # the spike reaches the top


def test_it_scales_to_the_maximum_puts_zeros_at_the_bottom_and_draws_nothing_without_data():
    assert {p.split(",")[1] for p in sparkline_points([3, 3, 3]).split()} == {"1.0"}
    assert {p.split(",")[1] for p in sparkline_points([0, 0]).split()} == {"23.0"}
    assert sparkline([], "active") == ""
    svg = sparkline([{"active": 1}, {"active": 2}], "active", "active connections")
    assert svg.startswith("<svg") and "<title>active connections</title>" in svg
