"""Reading one home's points out of an InfluxDB and turning them back into line protocol.

A query result loses two things line protocol needs: which columns are tags (so queries group by
`*`, which puts the tags in the series), and, in JSON, whether `230` was a float or an integer
(so field types come from `SHOW FIELD KEYS`, which also settles a field stored with different
types in different shards). Null columns are fields a point does not have.

Points are streamed as `Run`s: consecutive points of one series, still the rows of the query
chunk they came in, formatted only when the sink sends them. A run knows its series and time
range, so the points of any batch can be read again exactly (see `replicator.sink`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from energymon.errors import InfluxRejectedError, ReplicationError
from energymon.influx import InfluxClient, quote_ident, quote_string
from energymon.influx_answers import Row, Series
from energymon.lineproto import escape_measurement
from replicator.rows import BadPointHandler, RowFormatter

HOME_TAG = "home"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Half-open interval [start_ms, end_ms) of point time stamps."""

    start_ms: int
    end_ms: int

    @property
    def empty(self) -> bool:
        return self.end_ms <= self.start_ms

    def where(self, home: str) -> str:
        return (
            f"{quote_ident(HOME_TAG)} = {quote_string(home)} "
            f"AND time >= {self.start_ms}ms AND time < {self.end_ms}ms"
        )


def _missing_database(exc: InfluxRejectedError) -> bool:
    return "database not found" in exc.message


def query(client: InfluxClient, q: str) -> list[Series]:
    """A query's series; none when the database does not exist yet (a cloud nobody wrote to,
    a local InfluxDB before the collector's first write)."""
    try:
        return client.query(q)
    except InfluxRejectedError as exc:
        if _missing_database(exc):
            return []
        raise


def query_chunks(client: InfluxClient, q: str, chunk_size: int) -> Iterator[list[Series]]:
    """A streamed query's chunks; none when the database does not exist yet."""
    try:
        yield from client.query_chunks(q, chunk_size=chunk_size)
    except InfluxRejectedError as exc:
        if not _missing_database(exc):
            raise


def field_types(client: InfluxClient) -> dict[str, dict[str, str]]:
    """measurement -> field -> type, for every measurement of the database (also ones added
    after this code was written)."""
    out: dict[str, dict[str, str]] = {}
    for series in query(client, "SHOW FIELD KEYS"):
        types = out.setdefault(series.name, {})
        for key, stored in series.values:
            kind = stored
            # A field stored with different types in different shards: keep the widest reading.
            if types.get(key) not in (None, kind):
                kind = "float" if {types[key], kind} <= {"float", "integer"} else "string"
            types[key] = kind
    return out


def measurements_of_home(client: InfluxClient, home: str) -> list[str]:
    """Measurements holding at least one series of this home."""
    q = f"SHOW MEASUREMENTS WHERE {quote_ident(HOME_TAG)} = {quote_string(home)}"
    return sorted(row[0] for s in query(client, q) for row in s.values)


def measurements_in(client: InfluxClient, home: str, window: TimeRange) -> list[str]:
    """Measurements holding a point of this home in `window`: one query, reading at most one
    point per series, so an empty window (a caught-up replicator's usual step) costs little."""
    q = f"SELECT * FROM /.*/ WHERE {window.where(home)} GROUP BY * LIMIT 1"
    return sorted({series.name for series in query(client, q)})


def latest_time_ms(client: InfluxClient, home: str) -> int | None:
    """The newest time stamp this home has in any measurement, or None if it has none."""
    return _edge_time_ms(client, home, newest=True)


def earliest_time_ms(client: InfluxClient, home: str, since_ms: int) -> int | None:
    """The oldest time stamp at or after `since_ms`, to skip empty stretches quickly."""
    return _edge_time_ms(client, home, newest=False, since_ms=since_ms)


def earliest_of(clients: Sequence[InfluxClient], home: str, since_ms: int) -> int | None:
    """The oldest time stamp at or after `since_ms` in any of the databases."""
    times = [t for t in (earliest_time_ms(c, home, since_ms) for c in clients) if t is not None]
    return min(times) if times else None


def _edge_time_ms(
    client: InfluxClient, home: str, *, newest: bool, since_ms: int | None = None
) -> int | None:
    condition = f"{quote_ident(HOME_TAG)} = {quote_string(home)}"
    if since_ms is not None:
        condition += f" AND time >= {since_ms}ms"
    order = "DESC" if newest else "ASC"
    times: list[int] = [
        int(row[0])
        for measurement in measurements_of_home(client, home)
        for series in query(
            client,
            f"SELECT * FROM {quote_ident(measurement)} WHERE {condition} "
            f"ORDER BY time {order} LIMIT 1",
        )
        for row in series.values
    ]
    if not times:
        return None
    return max(times) if newest else min(times)


Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Segment:
    """Points of one series with time stamps in [first_ms, last_ms]: a point's identity is its
    measurement, tags and time, so this names exactly the points it was made from."""

    measurement: str
    tags: Tags
    first_ms: int
    last_ms: int


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive points of one series in time order, as rows of a query result."""

    measurement: str
    tags: Tags
    rows: Sequence[Row]
    format: Callable[[Sequence[Row]], list[str]]

    def __len__(self) -> int:
        return len(self.rows)

    def split(self, n: int) -> tuple[Run, Run]:
        return (
            Run(self.measurement, self.tags, self.rows[:n], self.format),
            Run(self.measurement, self.tags, self.rows[n:], self.format),
        )

    def segment(self) -> Segment:
        return Segment(self.measurement, self.tags, self.rows[0][0], self.rows[-1][0])

    def lines(self) -> list[str]:
        """The points as line protocol; a point that cannot be written is handed to the bad
        point handler instead."""
        return self.format(self.rows)


def iter_runs(
    client: InfluxClient,
    home: str,
    measurement: str,
    types: dict[str, str],
    window: TimeRange,
    *,
    chunk_size: int,
    run_size: int,
    on_bad_point: BadPointHandler,
    tags: Tags | None = None,
) -> Iterator[Run]:
    """Every point of `measurement` for this home in `window` (only of the series `tags`, if
    given) in runs of at most `run_size` points, streamed so that at most one chunk of the
    result is in memory."""
    where = window.where(home)
    if tags is not None:
        where += "".join(f" AND {quote_ident(k)} = {quote_string(v)}" for k, v in tags if v)
    q = f"SELECT * FROM {quote_ident(measurement)} WHERE {where} GROUP BY *"
    escaped_measurement = escape_measurement(measurement)
    # One per query: a field's values repeat across its series and chunks.
    formatter = RowFormatter(types)
    for chunk in client.query_chunks(q, chunk_size=chunk_size):
        for series in chunk:
            if series.tags.get(HOME_TAG) != home:
                raise ReplicationError(
                    f"InfluxDB returned a series of another home: {series.tags!r}"
                )
            key = tuple(sorted(series.tags.items()))
            if tags is not None and key != tags:
                continue
            fmt = formatter(escaped_measurement, measurement, series, on_bad_point)
            rows = series.values
            for start in range(0, len(rows), run_size):
                yield Run(measurement, key, rows[start : start + run_size], fmt)
