"""Copying one home's points for a time range from one InfluxDB to another."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain

from energymon.influx import InfluxClient
from replicator.points import (
    Run,
    Segment,
    TimeRange,
    field_types,
    iter_runs,
    measurements_in,
)
from replicator.rows import BadPoint
from replicator.sink import BatchSink

# Rows per chunk of a streamed query: what the replicator holds of the source's answer.
QUERY_CHUNK = 1000


class FieldTypes:
    """The source's field types, asked once for the copies that share this object (those of one
    replication step) rather than once per copy, and again when a copy meets a measurement they
    do not know yet (one made since they were asked)."""

    def __init__(self, source: InfluxClient) -> None:
        self.source = source
        self._types: dict[str, dict[str, str]] | None = None

    def of(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        if self._types is None or any(n not in self._types for n in names):
            self._types = field_types(self.source)
        return self._types


def copy_range(
    source: InfluxClient,
    sink: BatchSink,
    home: str,
    window: TimeRange,
    *,
    measurements: Iterable[str] | None = None,
    field_types_of: FieldTypes | None = None,
) -> int:
    """Copy every point of this home in `window` (all measurements, or the given ones) and
    return how many were written; returns only once the destination acknowledged all of them.
    `field_types_of`: the field types shared with other copies (default: asked for this one)."""
    if window.empty:
        return 0
    names = measurements_in(source, home, window) if measurements is None else list(measurements)
    if not names:
        return 0
    before = sink.stats.points + sink.stats.dead_letters
    types = (field_types_of or FieldTypes(source)).of(names)
    chunk_size = min(QUERY_CHUNK, sink.batch_size)

    def runs(measurement: str) -> Iterator[Run]:
        return iter_runs(
            source,
            home,
            measurement,
            types[measurement],
            window,
            chunk_size=chunk_size,
            run_size=sink.run_size,
            on_bad_point=sink.bad_point,
        )

    def reread(segments: Sequence[Segment]) -> Iterator[str]:
        for s in segments:
            for run in iter_runs(
                source,
                home,
                s.measurement,
                types[s.measurement],
                TimeRange(s.first_ms, s.last_ms + 1),
                chunk_size=chunk_size,
                run_size=sink.run_size,
                on_bad_point=_seen_before,
                tags=s.tags,
            ):
                yield from run.lines()

    sink.write_runs(chain.from_iterable(runs(m) for m in names if m in types), reread)
    return sink.stats.points + sink.stats.dead_letters - before


def _seen_before(point: BadPoint) -> None:
    """A point that cannot be serialised, met again when a refused batch is read once more: it
    became a dead letter the first time."""


def coalesce(ranges: Iterable[TimeRange], gap_ms: int = 0) -> list[TimeRange]:
    """Merge overlapping and touching ranges, and those less than `gap_ms` apart, so that a
    burst of journal entries is one copy (the points between ranges merged over a gap are
    copied too, which is harmless)."""
    merged: list[TimeRange] = []
    for r in sorted((r for r in ranges if not r.empty), key=lambda r: r.start_ms):
        if merged and r.start_ms <= merged[-1].end_ms + gap_ms:
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
