"""Grafana's `$__interval`, as Grafana computes it, so the source rule of the tiered panels can
be stated (docs/dashboards.md) and checked (tests, bench) in numbers.

From Grafana's source: the frontend's `rangeutil.calculateInterval` divides the range by the
panel's resolution (`maxDataPoints`), rounds it with `roundInterval` (the table below) and
raises it to the panel's min interval, or without one to the data source's `timeInterval`;
the backend writes it into an InfluxQL query as `gtime.FormatInterval` text (the largest whole
unit) and `$__interval_ms` as milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT_MS = {
    "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
    "y": 31_536_000_000,
}  # fmt: skip
# roundInterval (packages/grafana-data/src/datetime/rangeutil.ts): below each bound (ms), the
# interval it rounds to (ms); a year beyond the last.
ROUND_INTERVAL_MS = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000),
    (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000),
    (750000, 600000), (1050000, 900000), (1500000, 1200000), (2700000, 1800000),
    (5400000, 3600000), (9000000, 7200000), (16200000, 10800000), (32400000, 21600000),
    (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
)  # fmt: skip


def duration_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|[smhdwy])", text)
    if match is None:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def round_interval(interval_ms: float) -> int:
    for bound, rounded in ROUND_INTERVAL_MS:
        if interval_ms < bound:
            return rounded
    return _UNIT_MS["y"]


def format_interval(interval_ms: int) -> str:
    for unit in ("y", "d", "h", "m", "s"):
        if interval_ms >= _UNIT_MS[unit]:
            return f"{interval_ms // _UNIT_MS[unit]}{unit}"
    return f"{max(interval_ms, 1)}ms"


@dataclass(frozen=True)
class Interval:
    ms: int
    text: str


def grafana_interval(range_ms: int, max_data_points: int, min_interval: str | None) -> Interval:
    low = duration_ms(min_interval) if min_interval else 1
    ms = max(round_interval(range_ms / max_data_points), low)
    return Interval(ms, format_interval(ms))
