"""Verification: local against cloud, every point of every series-hour, by digest.

`compare` digests both sides' raw points (see `replicator.digest`) per series and hour and
reports each series-hour whose digests differ, with the first differing point; a window's last
hour is checked up to the window's end (the watermark), not skipped. `verify` can repair: it
re-copies the mismatched hours and checks them again. `cheap_differences` is the inexpensive
whole-history check: per series and day, the point count and the smallest and largest value of
every field, computed by InfluxDB, compared exactly. It can only prove that a day differs, never
that it is equal; a day it flags is checked (and repaired) point by point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from energymon.influx import InfluxClient, quote_ident
from replicator.copy import copy_range, split
from replicator.digest import (
    DAY_MS,
    HOUR_MS,
    HourDigest,
    HourKey,
    PointDifference,
    digest_window,
    first_difference,
    hour_floor,
    measurements_of_both,
)
from replicator.points import Tags, TimeRange, query
from replicator.sink import BatchSink

__all__ = ["DAY_MS", "HOUR_MS", "cheap_differences", "compare", "hour_floor", "verify"]

# The first differing point is looked up (one series-hour read again from both sides) for this
# many mismatches; the others are reported by their digests only.
FIRST_DIFFERENCES_REPORTED = 20

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class HourMismatch:
    measurement: str
    hour_ms: int
    tags: Tags
    local_points: int
    cloud_points: int
    detail: str
    first: PointDifference | None = None

    @property
    def series(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.tags if k != "home")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    checked: TimeRange
    hours: int
    mismatches: tuple[HourMismatch, ...]
    repaired_hours: int
    # Mismatched hours still wrong after a repair (for example the cloud holds more).
    unresolved_hours: int

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def mismatched_hours(self) -> set[tuple[str, int]]:
        return {(m.measurement, m.hour_ms) for m in self.mismatches}


def checked_window(window: TimeRange) -> TimeRange:
    """Whole hours from the start; the end as given, so the newest hour counts up to it."""
    return TimeRange(hour_floor(window.start_ms), window.end_ms)


def hours_in(window: TimeRange) -> int:
    return max(0, -(-(window.end_ms - window.start_ms) // HOUR_MS))


def _detail(a: HourDigest | None, b: HourDigest | None) -> str:
    local, cloud = (0 if a is None else a.points), (0 if b is None else b.points)
    if local != cloud:
        return f"{local} points local, {cloud} in the cloud"
    return f"{local} points on both sides, different digests"


def _differences(
    local: InfluxClient, cloud: InfluxClient, home: str, window: TimeRange, measurements: list[str]
) -> list[tuple[HourKey, HourDigest | None, HourDigest | None]]:
    mine = digest_window(local, home, window, measurements)
    theirs = digest_window(cloud, home, window, measurements)
    return [
        (key, mine.get(key), theirs.get(key))
        for key in sorted(set(mine) | set(theirs))
        if mine.get(key) != theirs.get(key)
    ]


def compare(
    local: InfluxClient,
    cloud: InfluxClient,
    home: str,
    window: TimeRange,
    *,
    progress: Progress | None = None,
    measurements: list[str] | None = None,
) -> tuple[int, list[HourMismatch]]:
    """Hours checked and the mismatched series-hours, one day of digests in memory at a time."""
    window = checked_window(window)
    names = measurements_of_both(local, cloud, home) if measurements is None else measurements
    days = list(split(window, DAY_MS))
    mismatches: list[HourMismatch] = []
    for done, day in enumerate(days, 1):
        for key, a, b in _differences(local, cloud, home, day, names):
            first = None
            if len(mismatches) < FIRST_DIFFERENCES_REPORTED:
                first = first_difference(local, cloud, home, key)
            detail = _detail(a, b)
            if first is not None:
                detail += "; " + first.describe()
            measurement, tags, hour = key
            mismatches.append(
                HourMismatch(
                    measurement, hour, tags, 0 if a is None else a.points,
                    0 if b is None else b.points, detail, first,
                )
            )  # fmt: skip
        if progress is not None:
            progress(done, len(days))
    return hours_in(window), mismatches


def verify(
    local: InfluxClient,
    cloud: InfluxClient,
    sink: BatchSink,
    home: str,
    window: TimeRange,
    *,
    repair: bool,
    progress: Progress | None = None,
) -> VerifyResult:
    """Compare, and with `repair` re-copy every mismatched hour and check it again."""
    checked = checked_window(window)
    hours, mismatches = compare(local, cloud, home, checked, progress=progress)
    todo = sorted({(m.measurement, m.hour_ms) for m in mismatches})
    repaired = 0
    if repair:
        for measurement, hour in todo:
            part = TimeRange(max(hour, checked.start_ms), min(hour + HOUR_MS, checked.end_ms))
            copy_range(local, sink, home, part, measurements=[measurement])
        for measurement, hour in todo:
            part = TimeRange(max(hour, checked.start_ms), min(hour + HOUR_MS, checked.end_ms))
            if not _differences(local, cloud, home, part, [measurement]):
                repaired += 1
    return VerifyResult(checked, hours, tuple(mismatches), repaired, len(todo) - repaired)


# (measurement, tags, day_ms) -> column ("count_power_w", "min_power_w", ...) -> value
DayAggregates = dict[tuple[str, Tags, int], dict[str, object]]


def day_aggregates(
    client: InfluxClient, home: str, window: TimeRange, measurements: list[str]
) -> DayAggregates:
    out: DayAggregates = {}
    for measurement in measurements:
        q = (
            f"SELECT count(*), min(*), max(*) FROM {quote_ident(measurement)} "
            f"WHERE {window.where(home)} GROUP BY time(1d), * fill(none)"
        )
        for series in query(client, q):
            tags = tuple(sorted((k, v) for k, v in series.tags.items() if v))
            for row in series.values:
                values = {
                    c: v for c, v in zip(series.columns[1:], row[1:], strict=True)
                    if v is not None
                }  # fmt: skip
                if any(c.startswith("count_") and v for c, v in values.items()):
                    out[(measurement, tags, row[0])] = values
    return out


def cheap_differences(
    local: InfluxClient, cloud: InfluxClient, home: str, window: TimeRange
) -> list[tuple[str, int]]:
    """(measurement, day) pairs whose counts, minima or maxima differ between the sides."""
    names = measurements_of_both(local, cloud, home)
    mine = day_aggregates(local, home, window, names)
    theirs = day_aggregates(cloud, home, window, names)
    return sorted({(k[0], k[2]) for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)})
