"""Verification: local against cloud, per hour and per series (device, sensor, any other tag),
by point count and field sums of every field; repair re-copies the hours that differ."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from energymon.influx import InfluxClient, quote_ident
from replicator.copy import copy_range, split
from replicator.points import TimeRange, measurements_of_home, query
from replicator.sink import BatchSink

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# (hour, sorted tag pairs) -> column ("count_power_w", "sum_power_w", ...) -> value
Aggregates = dict[tuple[int, tuple[tuple[str, str], ...]], dict[str, float]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class HourMismatch:
    measurement: str
    hour_ms: int
    tags: tuple[tuple[str, str], ...]
    local_points: int
    cloud_points: int
    detail: str

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


def hour_floor(time_ms: int) -> int:
    return time_ms - time_ms % HOUR_MS


def _aggregates(client: InfluxClient, measurement: str, home: str, window: TimeRange) -> Aggregates:
    q = (
        f"SELECT count(*), sum(*) FROM {quote_ident(measurement)} WHERE {window.where(home)} "
        "GROUP BY time(1h), * fill(none)"
    )
    out: Aggregates = {}
    for series in query(client, q):
        tags = tuple(sorted((k, v) for k, v in series.tags.items() if v))
        for row in series.values:
            values = {c: v for c, v in zip(series.columns[1:], row[1:], strict=True) if v}
            if any(c.startswith("count_") for c in values):
                out[(row[0], tags)] = values
    return out


def _difference(local: dict[str, float], cloud: dict[str, float]) -> str | None:
    for column in sorted(set(local) | set(cloud)):
        a, b = local.get(column, 0), cloud.get(column, 0)
        if column.startswith("count_"):
            if a != b:
                return f"{column[6:]}: {a} points local, {b} in the cloud"
        elif not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6):
            return f"{column[4:]}: sum {a} local, {b} in the cloud"
    return None


def _points(values: dict[str, float]) -> int:
    return int(max((v for c, v in values.items() if c.startswith("count_")), default=0))


def compare(
    local: InfluxClient,
    cloud: InfluxClient,
    home: str,
    window: TimeRange,
    *,
    progress: Progress | None = None,
) -> tuple[int, list[HourMismatch]]:
    """Hours checked and the mismatches, one day of aggregates in memory at a time."""
    window = TimeRange(hour_floor(window.start_ms), hour_floor(window.end_ms))
    measurements = sorted(
        set(measurements_of_home(local, home)) | set(measurements_of_home(cloud, home))
    )
    days = list(split(window, DAY_MS))
    mismatches: list[HourMismatch] = []
    for done, day in enumerate(days, 1):
        for measurement in measurements:
            mine = _aggregates(local, measurement, home, day)
            theirs = _aggregates(cloud, measurement, home, day)
            for key in sorted(set(mine) | set(theirs)):
                a, b = mine.get(key, {}), theirs.get(key, {})
                detail = _difference(a, b)
                if detail is not None:
                    hour, tags = key
                    mismatches.append(
                        HourMismatch(measurement, hour, tags, _points(a), _points(b), detail)
                    )
        if progress is not None:
            progress(done, len(days))
    return (window.end_ms - window.start_ms) // HOUR_MS, mismatches


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
    hours, mismatches = compare(local, cloud, home, window, progress=progress)
    repaired = unresolved = 0
    if repair and mismatches:
        todo = sorted({(m.measurement, m.hour_ms) for m in mismatches})
        for measurement, hour in todo:
            hour_range = TimeRange(hour, hour + HOUR_MS)
            copy_range(local, sink, home, hour_range, measurements=[measurement])
        for measurement, hour in todo:
            hour_range = TimeRange(hour, hour + HOUR_MS)
            mine = _aggregates(local, measurement, home, hour_range)
            theirs = _aggregates(cloud, measurement, home, hour_range)
            keys = set(mine) | set(theirs)
            if any(_difference(mine.get(k, {}), theirs.get(k, {})) for k in keys):
                unresolved += 1
            else:
                repaired += 1
    elif mismatches:
        unresolved = len({(m.measurement, m.hour_ms) for m in mismatches})
    checked = TimeRange(hour_floor(window.start_ms), hour_floor(window.end_ms))
    return VerifyResult(checked, hours, tuple(mismatches), repaired, unresolved)
