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
from typing import Any

from energymon.errors import InfluxRejectedError, LineProtocolError, ReplicationError
from energymon.influx import InfluxClient, Row, Series, quote_ident, quote_string
from energymon.lineproto import escape_key, escape_measurement, format_field_value

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


@dataclass(frozen=True, slots=True)
class BadPoint:
    """A stored point that cannot be written as line protocol again."""

    measurement: str
    time_ms: int
    content: str
    reason: str


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
BadPointHandler = Callable[[BadPoint], None]


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
    for chunk in client.query_chunks(q, chunk_size=chunk_size):
        for series in chunk:
            if series.tags.get(HOME_TAG) != home:
                raise ReplicationError(
                    f"InfluxDB returned a series of another home: {series.tags!r}"
                )
            key = tuple(sorted(series.tags.items()))
            if tags is not None and key != tags:
                continue
            fmt = _series_formatter(escaped_measurement, measurement, series, types, on_bad_point)
            rows = series.values
            for start in range(0, len(rows), run_size):
                yield Run(measurement, key, rows[start : start + run_size], fmt)


def _series_formatter(
    escaped_measurement: str,
    measurement: str,
    series: Series,
    types: dict[str, str],
    on_bad_point: BadPointHandler,
) -> Callable[[Sequence[Row]], list[str]]:
    try:
        prefix = escaped_measurement + "".join(
            f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(series.tags.items()) if v
        )
        columns = [
            (i, escape_key(name) + "=", _formatter(types.get(name, "")))
            for i, name in enumerate(series.columns)
            if name != "time"
        ]
    except LineProtocolError as exc:
        error = str(exc)

        def unwritable(rows: Sequence[Row]) -> list[str]:
            for row in rows:
                content = f"{series.tags!r} {dict(zip(series.columns, row, strict=True))!r}"
                on_bad_point(BadPoint(measurement, row[0], content, error))
            return []

        return unwritable

    template = _template(prefix, series.columns, types)

    def one(row: Row) -> str | None:
        try:
            fields = ",".join(key + fmt(row[i]) for i, key, fmt in columns if row[i] is not None)
        except (LineProtocolError, ValueError, TypeError) as exc:
            content = repr(dict(zip(series.columns, row, strict=True)))
            on_bad_point(BadPoint(measurement, row[0], f"{prefix} {content}", str(exc)))
            return None
        return f"{prefix} {fields} {row[0]}" if fields else None

    if template is None:
        return lambda rows: [line for line in map(one, rows) if line is not None]
    fast = template.__mod__
    # The template's values in its order: the fields as the columns come, the time stamp last.
    order = [i for i, name in enumerate(series.columns) if name != "time"]
    order.append(series.columns.index("time"))
    # A missing field prints as `None`, which no number or boolean prints.
    expected_nones = template.count("None")

    def some(rows: Sequence[Row]) -> list[str]:
        out = []
        for row in rows:
            line = one(row) if None in row else fast(tuple(row[i] for i in order))
            if line is not None:
                out.append(line)
        return out

    def lines(rows: Sequence[Row]) -> list[str]:
        # Most series have every field in every point: the rows are turned into columns and
        # back in the template's order, then one `%` per point, all without a Python loop.
        if not rows:
            return []
        by_column = list(zip(*rows, strict=True))
        out = list(map(fast, zip(*[by_column[i] for i in order], strict=True)))
        if "".join(out).count("None") != expected_nones * len(out):
            return some(rows)
        return out

    return lines


def _format_float(value: Any) -> str:
    return repr(float(value))


def _format_integer(value: Any) -> str:
    return f"{int(value)}i"


def _format_unsigned(value: Any) -> str:
    return f"{int(value)}u"


def _format_string(value: Any) -> str:
    """A stored string as line protocol. Unlike what the collector itself writes, any character
    InfluxDB stored is carried (a TAB, a newline, NUL: inside the quotes they are data, and
    InfluxDB reads them back unchanged); only the backslash and the quote are escaped."""
    if not isinstance(value, str):
        return format_field_value(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _formatter(kind: str) -> Callable[[Any], str]:
    """The line-protocol text of a stored value, as `format_field_value` writes it; numbers take
    a shorter path because a stored number is always finite and in range, and strings carry
    every character InfluxDB can store."""
    if kind == "float":
        return _format_float
    if kind == "integer":
        return _format_integer
    if kind == "unsigned":
        return _format_unsigned
    if kind == "string":
        return _format_string
    return format_field_value


def _percents(text: str) -> str:
    return text.replace("%", "%%")


def _template(prefix: str, columns: list[str], types: dict[str, str]) -> str | None:
    """A `%` template for the rows of a series that have every field, when all fields are
    numbers or booleans: the fields' values in column order, then the time stamp. A float
    field's value may arrive as an integer (JSON prints `230.0` as `230`; a shard may have
    stored it as an integer), whose text is still a float in line protocol."""
    parts = []
    for name in columns:
        if name == "time":
            continue
        kind = types.get(name)
        if kind in ("float", "boolean"):
            # `%s` of a float is its shortest round-tripping text, like repr; of a boolean,
            # True or False, both of which line protocol reads as booleans.
            value = "%s"
        elif kind == "integer":
            value = "%si"
        else:
            return None
        parts.append(_percents(escape_key(name)) + "=" + value)
    if not parts:
        return None
    return _percents(prefix) + " " + ",".join(parts) + " %s"
