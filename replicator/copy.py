"""Copying one home's points for a time range from one InfluxDB to another."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from energymon.influx import InfluxClient
from replicator.points import TimeRange, field_types, iter_lines, measurements_of_home
from replicator.sink import BatchSink


def copy_range(
    source: InfluxClient,
    sink: BatchSink,
    home: str,
    window: TimeRange,
    *,
    measurements: Iterable[str] | None = None,
) -> int:
    """Copy every point of this home in `window` (all measurements, or the given ones) and
    return how many were written; returns only once the destination acknowledged all of them."""
    if window.empty:
        return 0
    before = sink.stats.points + sink.stats.dead_letters
    types = field_types(source)
    names = measurements_of_home(source, home) if measurements is None else list(measurements)
    for measurement in names:
        if measurement not in types:
            continue
        sink.add_all(
            iter_lines(
                source,
                home,
                measurement,
                types[measurement],
                window,
                chunk_size=sink.batch_size,
                on_bad_point=sink.bad_point,
            )
        )
    sink.drain()
    return sink.stats.points + sink.stats.dead_letters - before


def coalesce(ranges: Iterable[TimeRange]) -> list[TimeRange]:
    """Merge overlapping and touching ranges, so that a burst of journal entries is one copy."""
    merged: list[TimeRange] = []
    for r in sorted((r for r in ranges if not r.empty), key=lambda r: r.start_ms):
        if merged and r.start_ms <= merged[-1].end_ms:
            last = merged[-1]
            merged[-1] = TimeRange(last.start_ms, max(last.end_ms, r.end_ms))
        else:
            merged.append(r)
    return merged


def split(window: TimeRange, step_ms: int) -> Iterator[TimeRange]:
    start = window.start_ms
    while start < window.end_ms:
        end = min(window.end_ms, start + step_ms)
        yield TimeRange(start, end)
        start = end
