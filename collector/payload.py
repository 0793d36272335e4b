"""Validation of `POST /api/v1/readings` bodies (docs/api.md).

Envelope problems (malformed JSON, missing or mistyped identity fields) reject the whole request
and store nothing. Problems with a measured value reject only that reading, which is kept in the
quarantine with its reason and still acknowledged, so a device never gets stuck re-sending it.
Hand-written rather than a pydantic model: it runs for every reading on the hot path.

`parse_body` is what the API calls: it parses with orjson, several times faster than `json`,
but uses orjson's document only where both parsers agree (see there).
"""

from __future__ import annotations

import json
import math
import operator
import sys
from collections.abc import Callable
from functools import lru_cache
from itertools import repeat
from typing import Any, NamedTuple

import orjson

from collector.submission import Candidate, ResetReport, Submission
from energymon.errors import BodyTooLargeError, MalformedJsonError, PayloadError
from energymon.lineproto import name_problem
from energymon.schema import FIELDS, MeasuredField, MeasuredValues, Measurement

MAX_NAME_CHARS = 64
# A device cannot have been up for longer than this; it keeps time stamps inside InfluxDB's range.
MAX_UPTIME_MS = 10 * 365 * 24 * 3600 * 1000
MAX_BOOT = 2**32 - 1
MAX_SEQ = 2**53
# Sensors one request may report meter errors for: with each count at most MAX_SEQ, their sum
# (the `meter_errors` field of a health record) stays within InfluxDB's 64-bit integers.
MAX_METER_ERROR_SENSORS = 256
_FLOAT_MAX = sys.float_info.max


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJsonError(f"body is not JSON: {exc}") from exc
    except RecursionError as exc:
        # Nesting deeper than the parser's stack: no body of this API is nested like that.
        raise MalformedJsonError("body is not JSON this API accepts: nested too deep") from exc


def parse_body(body: bytes, max_readings: int, arrival_ms: int) -> Submission:
    """What `parse_submission(parse_json(body), ...)` gives, sooner for what firmware sends.

    orjson reads some documents differently from `json` (an integer beyond 64 bits becomes a
    float) or refuses them (NaN, a lone surrogate). Its document is used only when every
    reading is in the firmware's own form: exactly its keys, each value of its field's type and
    valid, where both parsers agree. Any other body is parsed again by `json` and validated as
    `parse_submission` does, so what it is told is the same either way."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        try:
            envelope = _envelope(document, max_readings)
        except PayloadError:
            envelope = None
        if envelope is not None:
            parsed = _canonical_readings(envelope.readings, envelope.uptime_ms)
            if parsed is not None:
                return envelope.submission(parsed, arrival_ms)
    return parse_submission(parse_json(body), max_readings, arrival_ms)


def parse_submission(document: Any, max_readings: int, arrival_ms: int) -> Submission:
    """The store's input for one request body, anchored at its arrival on the collector."""
    envelope = _envelope(document, max_readings)
    uptime_ms = envelope.uptime_ms
    parsed = [_reading(item, i, uptime_ms) for i, item in enumerate(envelope.readings)]
    return envelope.submission(tuple(parsed), arrival_ms)


class _Envelope(NamedTuple):
    """A request's fields around its readings, checked; the readings not yet."""

    device: str
    boot: int
    uptime_ms: int
    readings: list[Any]
    dropped: int | None
    meter_errors: dict[str, int]
    reset: ResetReport | None
    nonce: int | None

    def submission(self, parsed: tuple[Candidate, ...], arrival_ms: int) -> Submission:
        return Submission(
            self.device, self.boot, arrival_ms - self.uptime_ms, parsed, self.dropped,
            self.meter_errors, self.reset, self.nonce, self.uptime_ms,
        )  # fmt: skip


def _envelope(document: Any, max_readings: int) -> _Envelope:
    if not isinstance(document, dict):
        raise PayloadError("body must be a JSON object")
    device = _name(document, "device", "")
    boot = _int(document, "boot", "", 0, MAX_BOOT)
    uptime_ms = _int(document, "uptime_ms", "", 0, MAX_UPTIME_MS)
    readings = document.get("readings")
    if not isinstance(readings, list):
        raise PayloadError("readings must be an array")
    if len(readings) > max_readings:
        raise BodyTooLargeError(f"{len(readings)} readings in one request; at most {max_readings}")
    dropped = _int(document, "dropped", "", 0, MAX_SEQ) if "dropped" in document else None
    meter_errors = _meter_errors(document.get("meter_errors", {}))
    reset = _reset(document["reset"]) if "reset" in document else None
    nonce = _int(document, "boot_nonce", "", 1, MAX_BOOT) if "boot_nonce" in document else None
    return _Envelope(device, boot, uptime_ms, readings, dropped, meter_errors, reset, nonce)


def _canonical_readings(items: list[Any], request_uptime_ms: int) -> tuple[Candidate, ...] | None:
    """Every reading, when each is in the firmware's own form and valid; otherwise None.

    Checked a column at a time (every reading's seq, then every uptime, every voltage...), so
    that the loops over readings run in C (`map`, `min`, `max`, `set`): it runs for every
    reading on the hot path. The document comes from orjson, which reads no NaN and no
    infinity, and a range check refuses any infinity all the same."""
    if not items or any(type(item) is not dict or len(item) != _READING_KEYS for item in items):
        return None
    try:
        seqs = list(map(_SEQ, items))
        uptimes = list(map(_UPTIME, items))
        sensors = list(map(_SENSOR, items))
        given = list(map(_MEASURED_VALUES, items))
    except KeyError:
        return None
    if (
        set(map(type, seqs)) != _INT
        or not (min(seqs) >= 1 and max(seqs) <= MAX_SEQ)
        or set(map(type, uptimes)) != _INT
        or not (min(uptimes) >= 0 and max(uptimes) <= request_uptime_ms)
        or set(map(type, sensors)) != _STR
        or any(_name_text_problem(sensor) is not None for sensor in set(sensors))
        or not _columns_canonical(list(zip(*given, strict=True)))
    ):
        return None
    # `tuple.__new__` straight from C: a named tuple's own constructor is a Python function.
    rows = zip(seqs, uptimes, sensors, given, repeat(None), items)
    return tuple(map(tuple.__new__, repeat(Candidate), rows))


def _columns_canonical(columns: list[tuple[Any, ...]]) -> bool:
    """Every value of each field's column of its field's type and within its range (NaN never
    is: no comparison with it holds, and a column of one value is compared as it is)."""
    for column, kind, valid in zip(columns, _CANONICAL_TYPES, _VALID, strict=True):
        if set(map(type, column)) != {kind}:
            return False
        if valid is not None and not (valid.low <= min(column) and max(column) <= valid.high):
            return False
    return True


def _reading(item: Any, index: int, request_uptime_ms: int) -> Candidate:
    where = f"readings[{index}]."
    if not isinstance(item, dict):
        raise PayloadError(f"readings[{index}] must be an object")
    seq = _int(item, "seq", where, 1, MAX_SEQ)
    uptime_ms = _int(item, "uptime_ms", where, 0, MAX_UPTIME_MS)
    sensor = _name(item, "sensor", where)
    if not item.keys() >= _MEASURED_KEYS:
        missing = next(name for name in _MEASURED if name not in item)
        raise PayloadError(f"{where}{missing} is missing")
    given = _MEASURED_VALUES(item)
    values: MeasuredValues | None
    problem: str | None
    if _columns_canonical([(value,) for value in given]):
        # What the firmware sends: every value of its field's JSON type and in range.
        values, problem = given, None
    else:
        values, problem = _checked_values(item)
    if problem is None and uptime_ms > request_uptime_ms:
        problem = f"measured at uptime {uptime_ms} ms, after the request was sent"
        values = None
    return Candidate(seq, uptime_ms, sensor, values, problem, item)


def _checked_values(item: dict[str, Any]) -> tuple[MeasuredValues | None, str | None]:
    """Every value converted by its field's type, or the reason one cannot be."""
    values = [as_kind(item[name]) for name, as_kind in _AS_KIND]
    if None in values:
        field = FIELDS[values.index(None)]
        return None, _value_problem(field, item[field.name])
    measurement = Measurement.from_values(values)  # type: ignore[arg-type]
    problem = measurement.problem()
    return (None, problem) if problem is not None else (measurement.values(), None)


def _as_float(value: Any) -> float | None:
    """The finite float a JSON number denotes, or None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _FLOAT_MAX:
        return float(value)
    return None


def _as_int(value: Any) -> int | None:
    """The integer a JSON value denotes, or None. As in JSON Schema, 17.0 is the integer 17."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# Precomputed from the schema's table: this runs for every reading.
_MEASURED = tuple(f.name for f in FIELDS)
_MEASURED_KEYS = frozenset(_MEASURED)
# seq, uptime_ms and sensor, then the measured fields.
_READING_KEYS = 3 + len(_MEASURED)
_MEASURED_VALUES = operator.itemgetter(*_MEASURED)
_CANONICAL_TYPES = tuple(f.kind for f in FIELDS)
_SEQ = operator.itemgetter("seq")
_UPTIME = operator.itemgetter("uptime_ms")
_SENSOR = operator.itemgetter("sensor")
_INT = {int}
_STR = {str}
_VALID = tuple(f.valid for f in FIELDS)
_AS_KIND: tuple[tuple[str, Callable[[Any], float | int | bool | None]], ...] = tuple(
    (f.name, {float: _as_float, int: _as_int, bool: _as_bool}[f.kind]) for f in FIELDS
)


def _value_problem(field: MeasuredField, value: Any) -> str:
    """Why `value` has no meaning as `field`: the reason its conversion gave None."""
    if field.kind is bool:
        return f"{field.name} must be true or false, got {_json_type(value)}"
    if field.kind is int:
        return f"{field.name} must be an integer, got {_json_type(value)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{field.name} must be a number, got {_json_type(value)}"
    if isinstance(value, float):
        return f"{field.name} is {value}, not a finite number"
    return f"{field.name} is too large to be a number"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _int(obj: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = obj.get(key)
    if type(value) is int and low <= value <= high:
        return value
    if key not in obj:
        raise PayloadError(f"{where}{key} is missing")
    value = _as_int(obj[key])
    if value is None:
        raise PayloadError(f"{where}{key} must be an integer, got {_json_type(obj[key])}")
    if not low <= value <= high:
        raise PayloadError(f"{where}{key} must be between {low} and {high}")
    return value


def _name(obj: dict[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise PayloadError(f"{where}{key} is missing")
    value = obj[key]
    if not isinstance(value, str):
        raise PayloadError(f"{where}{key} must be a string, got {_json_type(value)}")
    problem = _name_text_problem(value)
    if problem is not None:
        raise PayloadError(f"{where}{key} {problem}")
    return value


def _name_text_problem(value: str) -> str | None:
    """Why `value` cannot name a device or sensor, or None. A lone surrogate (JSON lets a
    `\\ud800` escape through) has no UTF-8 form: refused here, so neither the store's line
    protocol nor a health answer ever has to encode one."""
    # A home's few names recur in every request; only names short enough to be valid are
    # remembered, so the cache stays small whatever a client sends.
    if len(value) <= MAX_NAME_CHARS:
        return _short_name_text_problem(value)
    return _text_problem(value)


@lru_cache(maxsize=1024)
def _short_name_text_problem(value: str) -> str | None:
    return _text_problem(value)


def _text_problem(value: str) -> str | None:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be text without lone surrogates (not encodable as UTF-8)"
    problem = name_problem(value)
    if problem is None and len(value) > MAX_NAME_CHARS:
        problem = f"must be at most {MAX_NAME_CHARS} characters"
    return problem


def _meter_errors(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise PayloadError("meter_errors must be an object of sensor: count")
    if len(value) > MAX_METER_ERROR_SENSORS:
        raise PayloadError(f"meter_errors may list at most {MAX_METER_ERROR_SENSORS} sensors")
    out: dict[str, int] = {}
    for sensor in value:
        if _name_text_problem(sensor) is not None:
            # ASCII: the name may hold a lone surrogate, which the answer must not carry.
            raise PayloadError(f"meter_errors has an invalid sensor name {sensor!a}")
        out[sensor] = _int(value, sensor, "meter_errors.", 0, MAX_SEQ)
    return out


def _reset(value: Any) -> ResetReport:
    """The firmware's account of its last reset. Causes and stages are names, not a closed
    list, so a newer firmware's new cause is shown rather than refused."""
    if not isinstance(value, dict):
        raise PayloadError("reset must be an object")
    cause = _name(value, "cause", "reset.")
    stage = _name(value, "stage", "reset.") if "stage" in value else None
    watchdog_resets = _int(value, "watchdog_resets", "reset.", 0, MAX_BOOT)
    return ResetReport(cause, stage, watchdog_resets)
