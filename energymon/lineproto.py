"""InfluxDB line protocol serialisation that cannot be used for injection.

Measurement names, tag keys and tag values escape the separators (comma, space, equals) and
refuse what line protocol cannot carry faithfully: control characters (a newline would start a
new point) and backslashes (InfluxDB 1.x does not round-trip them in identifiers, and a trailing
one swallows the next separator). String field values escape backslash and double quote and also
refuse control characters, so a hostile string can never close its quotes or end the line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from energymon.errors import LineProtocolError

FieldValue = bool | int | float | str

_FORBIDDEN_IN_NAME = re.compile(r"[\x00-\x1f\x7f\\]")
_FORBIDDEN_IN_STRING = re.compile(r"[\x00-\x1f\x7f]")
_MAX_NAME_CHARS = 256
_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# The same few names (field keys, the home, devices, sensors) recur on every point: checking and
# escaping each once, not per point, takes most of the cost out of formatting one. Only names
# short enough to be valid are cached, so the caches stay small whatever a client sends.
_NAME_CACHE_SIZE = 1024


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a measurement, tag key or tag value, or None if it can."""
    if not name:
        return "must not be empty"
    if len(name) > _MAX_NAME_CHARS:
        return f"must be at most {_MAX_NAME_CHARS} characters"
    return _short_name_problem(name)


@lru_cache(maxsize=_NAME_CACHE_SIZE)
def _short_name_problem(name: str) -> str | None:
    if _FORBIDDEN_IN_NAME.search(name):
        return "must not contain control characters or backslashes"
    if name != name.strip():
        return "must not start or end with white space"
    return None


def _checked(name: str, what: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise LineProtocolError(f"{what} {name!r} {problem}")
    return name


def escape_measurement(name: str) -> str:
    return _checked(name, "measurement").translate(_MEASUREMENT_ESCAPES)


def escape_key(name: str) -> str:
    """Escape a tag key, tag value or field key."""
    if not name or len(name) > _MAX_NAME_CHARS:
        return _checked(name, "name")  # raises
    return _escaped_key(name)


@lru_cache(maxsize=_NAME_CACHE_SIZE)
def _escaped_key(name: str) -> str:
    return _checked(name, "name").translate(_KEY_ESCAPES)


def _format_bool(value: bool) -> str:
    return "true" if value else "false"


def _format_float(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        raise LineProtocolError(f"float {value} is not finite")
    return repr(value)


def _format_int(value: int) -> str:
    value = int(value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise LineProtocolError(f"integer {value} does not fit in 64 bits")
    return f"{value}i"


def _format_str(value: str) -> str:
    if _FORBIDDEN_IN_STRING.search(value):
        raise LineProtocolError("string field values must not contain control characters")
    return '"' + value.translate(_STRING_ESCAPES) + '"'


# By declared type; each converts its value to that type first, so an int declared a float is
# written as a float and can never change the field's type in InfluxDB.
_FORMAT_AS: dict[type, Callable[[Any], str]] = {
    bool: _format_bool,
    float: _format_float,
    int: _format_int,
    str: _format_str,
}


def format_field_value(value: FieldValue) -> str:
    # bool before int: it is a subclass of int. Floats first of the rest: most fields are.
    if isinstance(value, bool):
        return _format_bool(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, int):
        return _format_int(value)
    if isinstance(value, str):
        return _format_str(value)
    raise LineProtocolError(f"unsupported field type {type(value).__name__}")


def _tag_set(tags: Mapping[str, str]) -> str:
    return "".join([f",{escape_key(key)}={escape_key(tags[key])}" for key in sorted(tags)])


def format_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time_ms: int,
) -> str:
    """One point in line protocol, time stamp in milliseconds. Tags are sorted, as InfluxDB
    prefers for write speed."""
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    name = escape_measurement(measurement)
    field_set = ",".join([f"{escape_key(k)}={format_field_value(v)}" for k, v in fields.items()])
    return f"{name}{_tag_set(tags)} {field_set} {int(time_ms)}"


class PointFormat:
    """Points of one measurement whose fields are known in advance: the names are checked and
    escaped once, and each value is written as its declared type without being inspected.

    A layout of numbers and booleans only (a reading's) is written by one %-template; the
    series (measurement and tags) can be escaped once by the caller and reused for every point.
    """

    def __init__(self, measurement: str, fields: Sequence[tuple[str, type[FieldValue]]]) -> None:
        if not fields:
            raise LineProtocolError("a point needs at least one field")
        self._name = escape_measurement(measurement)
        self._fields = tuple((f"{escape_key(key)}=", _FORMAT_AS[kind]) for key, kind in fields)
        kinds = [kind for _, kind in fields]
        self._template: str | None = None
        if all(kind in _TEMPLATE_SPEC for kind in kinds):
            keys = [key for key, _ in self._fields]
            specs = [_TEMPLATE_SPEC[kind] for kind in kinds]
            self._template = ",".join(map(str.__add__, keys, specs))
        self._floats = tuple(i for i, kind in enumerate(kinds) if kind is float)
        self._ints = tuple(i for i, kind in enumerate(kinds) if kind is int)
        self._bools = tuple(i for i, kind in enumerate(kinds) if kind is bool)

    def format(self, tags: Mapping[str, str], values: Sequence[FieldValue], time_ms: int) -> str:
        """One point; `values` in the order of the fields."""
        return self.format_in(self.series(tags), values, time_ms)

    def series(self, tags: Mapping[str, str]) -> str:
        """The escaped measurement and tag set, for `format_in`."""
        return f"{self._name}{_tag_set(tags)}"

    def format_in(self, series: str, values: Sequence[FieldValue], time_ms: int) -> str:
        """One point of a series made by `series()`; `values` in the order of the fields."""
        if len(values) != len(self._fields):
            raise ValueError(f"zip: {len(values)} values for {len(self._fields)} fields")
        if self._template is None:
            pairs = zip(self._fields, values, strict=True)
            field_set = ",".join([key + as_type(value) for (key, as_type), value in pairs])
            return f"{series} {field_set} {int(time_ms)}"
        typed: list[Any] = list(values)
        for i in self._floats:
            value = typed[i] = float(typed[i])
            if not math.isfinite(value):
                raise LineProtocolError(f"float {value} is not finite")
        for i in self._ints:
            value = typed[i] = int(typed[i])
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise LineProtocolError(f"integer {value} does not fit in 64 bits")
        for i in self._bools:
            typed[i] = "true" if typed[i] else "false"
        return f"{series} {self._template % tuple(typed)} {int(time_ms)}"

    def format_validated(self, series: str, values: Sequence[FieldValue], time_ms: int) -> str:
        """What `format_in` writes, for values known to be of their fields' types already, floats
        finite and integers within 64 bits (a validated reading's): neither converted nor
        checked again, since formatting them is the store's largest cost per reading."""
        if self._template is None:
            return self.format_in(series, values, time_ms)
        typed: list[Any] = list(values)
        for i in self._bools:
            typed[i] = "true" if typed[i] else "false"
        return f"{series} {self._template % tuple(typed)} {time_ms}"


# %r of a float is its repr, as `_format_float` writes it.
_TEMPLATE_SPEC: dict[type, str] = {float: "%r", int: "%di", bool: "%s"}
