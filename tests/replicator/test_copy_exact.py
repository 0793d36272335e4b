"""The copy is exact: whatever InfluxDB stores comes back from the cloud bit for bit after a copy,
for floats (signed zeros, subnormals, the extremes, values that repeat), integers over the whole
64-bit range, booleans and strings with every character that needs escaping, in series whose
names need escaping, with fields missing from some points, through batches that end anywhere."""

from __future__ import annotations

import itertools
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from energymon.lineproto import escape_key, escape_measurement, name_problem
from harness.influxd import InfluxServer
from replicator.copy import copy_range
from replicator.deadletters import DeadLetterStore
from replicator.points import TimeRange
from replicator.rows import FLOAT_TEXTS, FloatTexts
from replicator.sink import BatchSink
from tests.replicator.helpers import HOME, T0

_numbers = itertools.count(1)

KINDS = ("float", "integer", "boolean", "string")
# Values that repeat across points, as a meter's do, and the edges of the float64 format.
FLOAT_POOL = [0.0, -0.0, 0.1, 230.0, 5e-324, -5e-324, sys.float_info.max, -sys.float_info.min]
FLOAT_POOL += [2.0**53 + 2, 1e21, 1e-7, 123456.789, 0.95]


@dataclass(frozen=True)
class Dataset:
    measurement: str
    sensor: str
    kinds: dict[str, str]
    rows: list[dict[str, Any]]


names = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\\"),
    min_size=1,
    max_size=8,
).filter(lambda name: name_problem(name) is None)
# Every character a string field needs escaped or may carry: quote, backslash, separators,
# control characters (inside the quotes they are data), and beyond ASCII.
string_values = st.text(st.sampled_from(['"', "\\", ",", " ", "=", "\t", "\n", "\r", "\x00", "\x7f",
                                         "a", "é", "✓", "😀"]), max_size=12)  # fmt: skip
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "float": st.one_of(
        st.sampled_from(FLOAT_POOL), st.floats(allow_nan=False, allow_infinity=False)
    ),
    "integer": st.integers(-(2**63), 2**63 - 1),
    "boolean": st.booleans(),
    "string": string_values,
}


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    fields = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    kinds = {name: draw(st.sampled_from(KINDS)) for name in fields}
    rows = []
    for _ in range(draw(st.integers(1, 30))):
        # A field is missing from a point now and then; a point has at least one.
        present = draw(st.lists(st.sampled_from(fields), min_size=1, unique=True))
        if draw(st.booleans()):
            present = fields
        rows.append({name: draw(VALUES[kinds[name]]) for name in present})
    return Dataset(draw(names), draw(names), kinds, rows)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return f"{value}i"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lines(data: Dataset) -> list[str]:
    series = f"{escape_measurement(data.measurement)},home={HOME},sensor={escape_key(data.sensor)}"
    return [
        f"{series} "
        + ",".join(f"{escape_key(k)}={_value(v)}" for k, v in row.items())
        + f" {T0 + i * 1000}"
        for i, row in enumerate(data.rows)
    ]


def _exact(value: Any) -> tuple[str, Any]:
    """A value as its type and exact contents: a float's 64 bits, not its numeric value."""
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    return (type(value).__name__, value)


def _stored(client: InfluxClient, measurement: str) -> list[tuple[Any, ...]]:
    escaped = measurement.replace("\\", "\\\\").replace('"', '\\"')
    return [
        (
            sorted(series.tags.items()),
            sorted((k, _exact(v)) for k, v in record.items() if v is not None),
        )
        for series in client.query(f'SELECT * FROM "{escaped}" GROUP BY *')
        for record in series.records()
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=datasets(), batch_size=st.integers(1, 12))
@example(
    data=Dataset("m", "s", {"f": "float"}, [{"f": v} for v in (0.1, 0.0, -0.0, 0.0, -0.0, 0.1)]),
    batch_size=4,
)
def test_every_value_is_copied_bit_for_bit(
    influx_server: InfluxServer,
    cloud_server: InfluxServer,
    tmp_path: Path,
    data: Dataset,
    batch_size: int,
) -> None:
    n = next(_numbers)
    local = InfluxClient(influx_server.url, f"exact_copy_local_{n}")
    cloud = InfluxClient(cloud_server.url, f"exact_copy_cloud_{n}")
    letters = DeadLetterStore(tmp_path / f"dead_letters_{n}.db")
    try:
        local.create_database()
        local.write(_lines(data))
        sink = BatchSink(cloud, letters, ManualClock(T0), batch_size=batch_size, target="cloud")

        copied = copy_range(local, sink, HOME, TimeRange(T0, T0 + len(data.rows) * 1000))

        assert letters.count() == 0
        assert copied == len(data.rows)
        stored = _stored(local, data.measurement)
        assert len(stored) == len(data.rows)
        assert _stored(cloud, data.measurement) == stored
    finally:
        letters.close()
        local.close()
        cloud.close()


def test_float_texts_never_remember_a_zero_for_the_other_zero() -> None:
    texts = FloatTexts()
    assert list(texts.texts((0.0, -0.0, 0.1, -0.0, 0.0, 0.1))) == [
        "0.0", "-0.0", "0.1", "-0.0", "0.0", "0.1",
    ]  # fmt: skip
    assert set(texts) == {0.1}


def test_float_texts_stop_looking_up_a_field_that_does_not_repeat() -> None:
    texts = FloatTexts()
    unique = tuple(1.0 + i / 7 for i in range(FLOAT_TEXTS * 2))
    assert list(texts.texts(unique)) == [repr(v) for v in unique]
    assert len(texts) == FLOAT_TEXTS
    assert not texts.useful
    # No longer looked up: the values themselves, which `%s` prints the same.
    assert texts.texts(unique[:3]) == unique[:3]
