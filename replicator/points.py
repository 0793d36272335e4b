"""Reading one home's points out of an InfluxDB and turning them back into line protocol.

InfluxQL's JSON loses two things line protocol needs: whether `230` was a float or an integer
(so field types come from `SHOW FIELD KEYS`), and which columns are tags (so queries group by
`*`, which puts the tags in the series). Null columns are fields a point does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from energymon.errors import InfluxRejectedError, LineProtocolError, ReplicationError
from energymon.influx import InfluxClient, Series, quote_ident, quote_string
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


def latest_time_ms(client: InfluxClient, home: str) -> int | None:
    """The newest time stamp this home has in any measurement, or None if it has none."""
    latest: int | None = None
    for measurement in measurements_of_home(client, home):
        q = (
            f"SELECT * FROM {quote_ident(measurement)} WHERE {quote_ident(HOME_TAG)} = "
            f"{quote_string(home)} ORDER BY time DESC LIMIT 1"
        )
        for series in query(client, q):
            for row in series.values:
                latest = row[0] if latest is None else max(latest, row[0])
    return latest


def earliest_time_ms(client: InfluxClient, home: str, since_ms: int) -> int | None:
    """The oldest time stamp at or after `since_ms`, to skip empty stretches quickly."""
    earliest: int | None = None
    for measurement in measurements_of_home(client, home):
        q = (
            f"SELECT * FROM {quote_ident(measurement)} WHERE {quote_ident(HOME_TAG)} = "
            f"{quote_string(home)} AND time >= {since_ms}ms ORDER BY time ASC LIMIT 1"
        )
        for series in query(client, q):
            for row in series.values:
                earliest = row[0] if earliest is None else min(earliest, row[0])
    return earliest


def _format_float(value: Any) -> str:
    return repr(float(value))


def _format_integer(value: Any) -> str:
    return f"{int(value)}i"


def _format_unsigned(value: Any) -> str:
    return f"{int(value)}u"


def _formatter(kind: str) -> Callable[[Any], str]:
    """The line-protocol text of a stored value, as `format_field_value` writes it; numbers take
    a shorter path because a stored number is always finite and in range, and this runs for
    every field of every point."""
    if kind == "float":
        return _format_float
    if kind == "integer":
        return _format_integer
    if kind == "unsigned":
        return _format_unsigned
    return format_field_value


def iter_lines(
    client: InfluxClient,
    home: str,
    measurement: str,
    types: dict[str, str],
    window: TimeRange,
    *,
    chunk_size: int,
    on_bad_point: Callable[[BadPoint], None],
) -> Iterator[str]:
    """Every point of `measurement` for this home in `window`, as line protocol, streamed so that
    at most one chunk of the result is in memory."""
    q = f"SELECT * FROM {quote_ident(measurement)} WHERE {window.where(home)} GROUP BY *"
    escaped_measurement = escape_measurement(measurement)
    for chunk in client.query_chunks(q, chunk_size=chunk_size):
        for series in chunk:
            if series.tags.get(HOME_TAG) != home:
                raise ReplicationError(
                    f"InfluxDB returned a series of another home: {series.tags!r}"
                )
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
                for row in series.values:
                    content = f"{series.tags!r} {dict(zip(series.columns, row, strict=True))!r}"
                    on_bad_point(BadPoint(measurement, row[0], content, str(exc)))
                continue
            template = _template(prefix, series.columns, types)
            for row in series.values:
                if template is not None and None not in row:
                    yield template.format(*row)
                    continue
                try:
                    fields = ",".join(
                        key + fmt(row[i]) for i, key, fmt in columns if row[i] is not None
                    )
                except (LineProtocolError, ValueError, TypeError) as exc:
                    content = repr(dict(zip(series.columns, row, strict=True)))
                    on_bad_point(BadPoint(measurement, row[0], f"{prefix} {content}", str(exc)))
                    continue
                if fields:
                    yield f"{prefix} {fields} {row[0]}"


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _template(prefix: str, columns: list[str], types: dict[str, str]) -> str | None:
    """A `str.format` template for the rows of a series that have every field, when all fields
    are numbers or booleans: one call per point instead of one per field. A float field's value
    may arrive as a JSON integer, whose text is still a float in line protocol."""
    parts = []
    for i, name in enumerate(columns):
        if name == "time":
            continue
        kind = types.get(name)
        if kind == "float":
            value = f"{{{i}!r}}"
        elif kind == "integer":
            value = f"{{{i}}}i"
        elif kind == "boolean":
            # Python prints True and False, both of which line protocol reads as booleans.
            value = f"{{{i}}}"
        else:
            return None
        parts.append(_braces(escape_key(name)) + "=" + value)
    if not parts:
        return None
    return _braces(prefix) + " " + ",".join(parts) + " {0}"
