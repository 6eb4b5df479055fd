"""Template helpers: compact numbers, byte rates and server-rendered SVG sparklines (no JS library)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.utils.html import format_html

from ..live import sparkline_points

register = template.Library()

_PREFIXES = ("", "k", "M", "G", "T", "P")


def _scaled(value, base: int) -> tuple[float, str]:
    n = float(value or 0)
    i = 0
    while abs(n) >= base and i < len(_PREFIXES) - 1:
        n /= base
        i += 1
    return n, _PREFIXES[i]


@register.filter
def compact(value) -> str:
    """1234 -> 1.2k, 12 -> 12: keeps table columns narrow on a phone."""
    try:
        n, prefix = _scaled(value, 1000)
    except (TypeError, ValueError):
        return ""
    if not prefix:
        return f"{n:g}" if n != int(n) else f"{int(n)}"
    return f"{n:.1f}{prefix}"


@register.filter
def bytes_rate(value) -> str:
    """Bytes per second as B/s, KiB/s, MiB/s..."""
    try:
        n, prefix = _scaled(value, 1024)
    except (TypeError, ValueError):
        return ""
    return f"{n:.0f} B/s" if not prefix else f"{n:.1f} {prefix.upper()}iB/s"


@register.filter
def seconds(value) -> str:
    """Latency in seconds shown as ms."""
    if value is None or value == "":
        return ""
    try:
        return f"{float(value) * 1000:.0f} ms"
    except (TypeError, ValueError):
        return ""


@register.simple_tag
def sparkline(samples, key: str, title: str = "", width: int = 120, height: int = 24):
    """An inline SVG polyline of `key` over `samples` (stats.history shape); empty when there is none."""
    values = []
    for s in samples or ():
        try:
            values.append(float(s.get(key) or 0))
        except (TypeError, ValueError, AttributeError):
            values.append(0.0)
    points = sparkline_points(values, width, height)
    if not points:
        return ""
    return format_html(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}">'
        '<title>{t}</title><polyline fill="none" points="{p}"/></svg>',
        w=width,
        h=height,
        t=title or key,
        p=points,
    )


@register.simple_tag
def with_query(base: dict, extra: dict, **more) -> str:
    """`?` + the current filters `base` with `extra` and `more` put over them: a link narrowing the same page."""
    return "?" + urlencode({**base, **extra, **more})


@register.inclusion_tag("clusters/_pager.html", takes_context=True)
def pager(context, page, param: str = "page", what: str = "rows"):
    """Previous / next links for a django Page, keeping every other parameter of the current query string
    (a filter, the other table's page), so paging one table never resets another."""
    query = context["request"].GET.copy()

    def link(number: int) -> str:
        query[param] = number
        return f"?{query.urlencode()}"

    return {
        "page": page,
        "what": what,
        "previous": link(page.previous_page_number()) if page.has_previous() else "",
        "next": link(page.next_page_number()) if page.has_next() else "",
    }
