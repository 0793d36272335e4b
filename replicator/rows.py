"""Turning the rows of a query result back into line protocol, exactly.

A row is a point of one series: its time stamp and one value per field, null where the point
does not have the field. The field types come from `SHOW FIELD KEYS` (a JSON answer prints the
float `230.0` as `230`). Every value is written so that InfluxDB stores the same bits again: a
float as its shortest round-tripping text, an integer with `i`, a string with only the backslash
and the quote escaped.

Copying is bound by the CPU of formatting, so the usual case takes a path without a Python loop
per point: a series whose fields are all numbers or booleans, with every field in every point,
is one `%` per point over the rows turned into columns and back; and a float's text, the largest
cost, is remembered per field, because a meter's readings repeat (a voltage to 0.1 V, a power
factor to 0.01, a steady load).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from energymon.errors import LineProtocolError
from energymon.influx_answers import Row, Series
from energymon.lineproto import escape_key, format_field_value

# Texts remembered per field and query: a few hundred kilobytes at most.
FLOAT_TEXTS = 4096


@dataclass(frozen=True, slots=True)
class BadPoint:
    """A stored point that cannot be written as line protocol again."""

    measurement: str
    time_ms: int
    content: str
    reason: str


BadPointHandler = Callable[[BadPoint], None]
Format = Callable[[Sequence[Row]], list[str]]


class FloatTexts(dict[Any, str]):
    """The line-protocol text of a float field's values, remembered while they repeat.

    The text is what `%s` prints (see `_template`). Only non-zero floats are remembered: `0.0`
    and `-0.0` are equal keys with different texts, and an integer or a boolean equal to a float
    prints otherwise. Equal floats have the same text, so the copy stays exact. A field whose
    values mostly do not repeat, once it has filled its memory, is no longer looked up: a miss
    costs more than `%s` alone."""

    def __init__(self) -> None:
        super().__init__()
        self.misses = 0
        self.useful = True

    def __missing__(self, value: Any) -> str:
        self.misses += 1
        text = str(value)
        if type(value) is float and value and len(self) < FLOAT_TEXTS:
            self[value] = text
        return text

    def texts(self, values: tuple[Any, ...]) -> Iterable[Any]:
        """The values, those this field remembers as their text."""
        if not self.useful:
            return values
        before = self.misses
        out = list(map(self.__getitem__, values))
        if len(self) >= FLOAT_TEXTS and (self.misses - before) * 2 > len(values):
            self.useful = False
        return out


class RowFormatter:
    """Formats the series of one query; remembers float texts across its series and chunks."""

    def __init__(self, types: dict[str, str]) -> None:
        self.types = types
        self._floats: dict[str, FloatTexts] = {}

    def __call__(
        self,
        escaped_measurement: str,
        measurement: str,
        series: Series,
        on_bad_point: BadPointHandler,
    ) -> Format:
        """The function that formats rows of `series`."""
        try:
            prefix = escaped_measurement + "".join(
                f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(series.tags.items()) if v
            )
            columns = [
                (i, escape_key(name) + "=", _formatter(self.types.get(name, "")))
                for i, name in enumerate(series.columns)
                if name != "time"
            ]
        except LineProtocolError as exc:
            return _unwritable(measurement, series, str(exc), on_bad_point)

        def one(row: Row) -> str | None:
            try:
                fields = ",".join(
                    key + fmt(row[i]) for i, key, fmt in columns if row[i] is not None
                )
            except (LineProtocolError, ValueError, TypeError) as exc:
                content = repr(dict(zip(series.columns, row, strict=True)))
                on_bad_point(BadPoint(measurement, row[0], f"{prefix} {content}", str(exc)))
                return None
            return f"{prefix} {fields} {row[0]}" if fields else None

        template = _template(prefix, series.columns, self.types)
        if template is None:
            return lambda rows: [line for line in map(one, rows) if line is not None]
        return self._fast(template, series.columns, one)

    def _fast(self, template: str, names: list[str], one: Callable[[Row], str | None]) -> Format:
        fast = template.__mod__
        # The template's values in its order: the fields as the columns come, the time last.
        order = [i for i, name in enumerate(names) if name != "time"]
        order.append(names.index("time"))
        floats = [
            (i, self._floats.setdefault(name, FloatTexts()))
            for i, name in enumerate(names)
            if self.types.get(name) == "float"
        ]
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
            if not rows:
                return []
            by_column: list[Iterable[Any]] = list(zip(*rows, strict=True))
            for i, texts in floats:
                by_column[i] = texts.texts(by_column[i])  # type: ignore[arg-type]
            out = list(map(fast, zip(*[by_column[i] for i in order], strict=True)))
            if "".join(out).count("None") != expected_nones * len(out):
                return some(rows)
            return out

        return lines


def _unwritable(
    measurement: str, series: Series, error: str, on_bad_point: BadPointHandler
) -> Format:
    """A series whose name or tags line protocol cannot carry: each point is a bad point."""

    def unwritable(rows: Sequence[Row]) -> list[str]:
        for row in rows:
            content = f"{series.tags!r} {dict(zip(series.columns, row, strict=True))!r}"
            on_bad_point(BadPoint(measurement, row[0], content, error))
        return []

    return unwritable


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
