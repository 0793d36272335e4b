"""Digests of raw points, per series (measurement and tag set) and hour, computed client-side.

Two databases hold the same points exactly when every series-hour has the same digest, so a
digest must change with any change of a point: its time stamp, a value, a value's type, a field
that appears or disappears, the order of values. It is a BLAKE2b over the canonical form of each
point in time order: the MessagePack encoding of `[time, value, value, ...]` (a float as its
exact 64 bits, an integer as an integer, booleans and strings as themselves), preceded by the
names of the point's fields whenever they differ from the previous point's. The canonical form
depends on neither the chunking of the query result nor the transport: an InfluxDB that answers
in JSON (`230.0` arrives as `230`) is read back through the field types it declares.

Points are streamed as MessagePack in chunks; what is held is one chunk and one small hash state
per series-hour of the window being digested.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]

from energymon.influx import InfluxClient, quote_ident, quote_string
from energymon.influx_answers import Row
from replicator.points import (
    HOME_TAG,
    Tags,
    TimeRange,
    field_types,
    measurements_of_home,
    query_chunks,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# Rows per chunk of a streamed query: the most points of one side held at once.
DIGEST_CHUNK = 10_000
DIGEST_BYTES = 16

_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def hour_floor(time_ms: int) -> int:
    return time_ms - time_ms % HOUR_MS


# (measurement, tags, hour_ms): one series-hour
HourKey = tuple[str, Tags, int]


@dataclass(frozen=True, slots=True)
class HourDigest:
    points: int
    first_ms: int
    last_ms: int
    digest: bytes


@dataclass(slots=True)
class _Accumulator:
    hasher: Any = field(default_factory=lambda: hashlib.blake2b(digest_size=DIGEST_BYTES))
    signature: tuple[str, ...] | None = None
    points: int = 0
    first_ms: int = 0
    last_ms: int = 0

    def add(self, columns: Sequence[str], rows: Sequence[Row], floats: Sequence[int]) -> None:
        if not rows:
            return
        if self.points == 0:
            self.first_ms = rows[0][0]
        self.points += len(rows)
        self.last_ms = rows[-1][0]
        if _plain(rows, floats):
            self._sign(tuple(columns[1:]))
            self.hasher.update(b"".join(map(_pack, rows)))
            return
        coerce = set(floats)
        for row in rows:
            present = [i for i in range(1, len(row)) if row[i] is not None]
            self._sign(tuple(columns[i] for i in present))
            values = [row[0]] + [float(row[i]) if i in coerce else row[i] for i in present]
            self.hasher.update(_pack(values))

    def _sign(self, signature: tuple[str, ...]) -> None:
        if signature != self.signature:
            self.signature = signature
            self.hasher.update(b"\x00" + _pack(signature))

    def result(self) -> HourDigest:
        return HourDigest(self.points, self.first_ms, self.last_ms, self.hasher.digest())


def _plain(rows: Sequence[Row], floats: Sequence[int]) -> bool:
    """Every point has every field, and every float field's value arrived as a float."""
    if any(None in row for row in rows):
        return False
    return all(type(row[i]) is float for i in floats for row in rows)


def series_query(measurement: str, home: str, window: TimeRange, tags: Tags | None = None) -> str:
    where = window.where(home)
    if tags is not None:
        where += "".join(f" AND {quote_ident(k)} = {quote_string(v)}" for k, v in tags)
    return f"SELECT * FROM {quote_ident(measurement)} WHERE {where} GROUP BY *"


def series_rows(
    client: InfluxClient, measurement: str, home: str, window: TimeRange, tags: Tags | None
) -> Iterator[tuple[Tags, list[str], list[Row]]]:
    """The raw points of this home's series in `window`, chunk by chunk, in time order."""
    q = series_query(measurement, home, window, tags)
    for chunk in query_chunks(client, q, DIGEST_CHUNK):
        for series in chunk:
            key = tuple(sorted((k, v) for k, v in series.tags.items() if v))
            if series.tags.get(HOME_TAG) != home or (tags is not None and key != tags):
                continue
            yield key, series.columns, series.values


def digest_window(
    client: InfluxClient, home: str, window: TimeRange, measurements: Sequence[str]
) -> dict[HourKey, HourDigest]:
    """The digest of every series-hour of this home with points in `window`."""
    types = field_types(client)
    out: dict[HourKey, _Accumulator] = {}
    for measurement in measurements:
        kinds = types.get(measurement, {})
        for tags, columns, rows in series_rows(client, measurement, home, window, None):
            floats = [i for i, c in enumerate(columns) if i and kinds.get(c) == "float"]
            times = [row[0] for row in rows]
            start = 0
            while start < len(rows):
                hour = hour_floor(times[start])
                end = bisect_left(times, hour + HOUR_MS, start)
                key = (measurement, tags, hour)
                out.setdefault(key, _Accumulator()).add(columns, rows[start:end], floats)
                start = end
    return {key: acc.result() for key, acc in out.items()}


def measurements_of_both(local: InfluxClient, cloud: InfluxClient, home: str) -> list[str]:
    return sorted(set(measurements_of_home(local, home)) | set(measurements_of_home(cloud, home)))


@dataclass(frozen=True, slots=True)
class PointDifference:
    """The first point of a series-hour that differs: absent on one side, or other values."""

    time_ms: int
    local: dict[str, Any] | None
    cloud: dict[str, Any] | None

    def describe(self) -> str:
        return f"first difference at {self.time_ms} ms: local {self.local}, cloud {self.cloud}"


def series_hour_points(client: InfluxClient, home: str, key: HourKey) -> dict[int, dict[str, Any]]:
    measurement, tags, hour = key
    window = TimeRange(hour, hour + HOUR_MS)
    kinds = field_types(client).get(measurement, {})
    out: dict[int, dict[str, Any]] = {}
    for _, columns, rows in series_rows(client, measurement, home, window, tags):
        for row in rows:
            out[row[0]] = {
                c: (float(v) if kinds.get(c) == "float" else v)
                for c, v in zip(columns[1:], row[1:], strict=True)
                if v is not None
            }
    return out


def first_difference(
    local: InfluxClient, cloud: InfluxClient, home: str, key: HourKey
) -> PointDifference | None:
    """Read one series-hour from both sides (bounded: one hour of one series) and find the
    earliest point that differs, comparing values with their types."""
    mine, theirs = series_hour_points(local, home, key), series_hour_points(cloud, home, key)
    for time_ms in sorted(set(mine) | set(theirs)):
        a, b = mine.get(time_ms), theirs.get(time_ms)
        if a is None or b is None or not same_point(a, b):
            return PointDifference(time_ms, a, b)
    return None


def same_point(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _typed(a) == _typed(b)


def _typed(values: dict[str, Any]) -> list[tuple[str, bytes]]:
    # The canonical encoding, so that 1 and 1.0 differ and so do 0.0 and -0.0.
    return sorted((k, _pack(v)) for k, v in values.items())
