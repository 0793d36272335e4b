"""Line protocol escaping: hostile names can never add tags, fields or points.

The proof is a round trip through a real influxd: whatever the name, exactly one point comes back,
with exactly the tags and fields written.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energymon.errors import LineProtocolError
from energymon.influx import InfluxClient
from energymon.lineproto import PointFormat, format_field_value, format_line, name_problem

_times = itertools.count(1_600_000_000_000, 1000)

# Everything a name may hold, weighted towards line protocol's own syntax.
hostile_names = st.text(
    alphabet=st.one_of(
        st.sampled_from([*" ,=\",'#i{}[]", "é", "⚡", "\u2028", "%"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    min_size=1,
    max_size=30,
).filter(lambda name: name_problem(name) is None)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    device=hostile_names,
    sensor=hostile_names,
    text=st.text(max_size=40).filter(lambda t: not any(ord(c) < 32 or ord(c) == 127 for c in t)),
)
def test_hostile_names_round_trip_exactly(
    influx: InfluxClient, device: str, sensor: str, text: str
) -> None:
    time_ms = next(_times)
    line = format_line(
        "electricity",
        {"home": "h", "device": device, "sensor": sensor},
        {"power_w": 1.5, "note": text, "seq": 7},
        time_ms,
    )
    assert "\n" not in line
    influx.write([line])
    rows = [
        r
        for s in influx.query(f"SELECT * FROM electricity WHERE time = {time_ms}ms")
        for r in s.records()
    ]
    assert len(rows) == 1
    assert rows[0] == {
        "time": time_ms,
        "home": "h",
        "device": device,
        "sensor": sensor,
        "power_w": 1.5,
        "note": text,
        "seq": 7,
    }


@given(st.text(min_size=1).filter(lambda n: any(ord(c) < 32 or c in "\\\x7f" for c in n)))
def test_names_with_newlines_or_backslashes_are_refused(name: str) -> None:
    with pytest.raises(LineProtocolError):
        format_line("m", {"device": name}, {"f": 1.0}, 0)


def test_field_values() -> None:
    assert format_field_value(True) == "true"
    assert format_field_value(3) == "3i"
    assert format_field_value(0.1) == "0.1"
    assert format_field_value('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'
    for bad in (float("nan"), float("inf"), 2**63, "a\nb"):
        with pytest.raises(LineProtocolError):
            format_field_value(bad)


point_values = st.tuples(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text().filter(lambda t: not any(ord(c) < 32 or ord(c) == 127 for c in t)),
)


@given(values=point_values, device=hostile_names)
def test_a_point_format_writes_what_format_line_writes(
    values: tuple[float, int, bool, str], device: str
) -> None:
    keys = ("power w", "energy,wh", "alarm=", "note")
    layout = PointFormat("elec tricity", list(zip(keys, (float, int, bool, str), strict=True)))
    tags = {"home": "h", "device": device}
    expected = format_line("elec tricity", tags, dict(zip(keys, values, strict=True)), 5)
    assert layout.format(tags, values, 5) == expected


def test_a_point_format_writes_each_value_as_its_declared_type() -> None:
    layout = PointFormat("m", [("f", float), ("i", int), ("b", bool)])
    assert layout.format({}, (230, True, 1), 0) == "m f=230.0,i=1i,b=true 0"
    for bad in ((math.nan, 1, True), (1.0, 2**63, True)):
        with pytest.raises(LineProtocolError):
            layout.format({}, bad, 0)
    with pytest.raises(ValueError, match="zip"):
        layout.format({}, (1.0, 1), 0)
    with pytest.raises(LineProtocolError):
        PointFormat("m", [("bad\nkey", float)])
