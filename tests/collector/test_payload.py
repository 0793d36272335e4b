"""Payload validation: property-based, since devices may send anything."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.payload import parse_json, parse_submission
from collector.submission import ResetReport
from energymon.errors import EnergymonError, PayloadError
from energymon.schema import FIELDS, MeasuredField
from tests.collector.helpers import batch, reading

ARRIVAL_MS = 1_700_000_000_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@given(json_values)
def test_any_json_is_either_a_batch_or_a_payload_error(document: Any) -> None:
    try:
        parsed = parse_submission(document, 1000, ARRIVAL_MS)
    except EnergymonError:
        return
    assert isinstance(parsed.device, str) and parsed.boot >= 0
    assert all(r.seq >= 1 and r.offset_ms >= 0 for r in parsed.readings)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_fail_cleanly(body: bytes) -> None:
    try:
        document = parse_json(body)
    except PayloadError:
        return
    assert isinstance(document, dict | list | str | int | float | bool | None)


measured = {
    "voltage_v": st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.text(max_size=3)
    | st.none(),
    "current_a": st.floats(0, 100),
    "power_w": st.floats(0, 23000),
    "energy_wh": st.integers(-10, 10**8) | st.floats(0, 10),
    "frequency_hz": st.floats(40, 70),
    "power_factor": st.floats(0, 1.2),
    "alarm": st.booleans() | st.integers(0, 1),
}


@given(st.fixed_dictionaries(measured))
def test_a_reading_is_either_a_valid_measurement_or_has_a_reason(values: dict[str, Any]) -> None:
    document = batch([]) | {"readings": [reading(1, 1000, **values)]}
    [parsed] = parse_submission(document, 1000, ARRIVAL_MS).readings
    assert (parsed.measurement is None) == (parsed.problem is not None)
    if parsed.measurement is not None:
        m = parsed.measurement
        assert 80 <= m.voltage_v <= 260 and 45 <= m.frequency_hz <= 65 and 0 <= m.power_factor <= 1
        assert isinstance(m.energy_wh, int) and isinstance(m.alarm, bool)


def test_reading_measured_after_the_request_is_quarantined() -> None:
    [parsed] = parse_submission(
        batch([]) | {"uptime_ms": 500, "readings": [reading(1, 1000)]}, 1000, ARRIVAL_MS
    ).readings
    assert parsed.problem is not None and "after the request" in parsed.problem


def test_empty_batch_is_a_heartbeat() -> None:
    document = json.loads('{"device":"d","boot":0,"uptime_ms":5,"readings":[]}')
    parsed = parse_submission(document, 1000, ARRIVAL_MS)
    assert parsed.readings == () and parsed.highest_seq is None


def test_the_anchor_is_arrival_minus_the_request_uptime() -> None:
    document = batch([]) | {"uptime_ms": 5000, "readings": [reading(1, 4000)]}
    parsed = parse_submission(document, 1000, ARRIVAL_MS)
    assert parsed.anchor_ms == ARRIVAL_MS - 5000
    assert [c.offset_ms for c in parsed.readings] == [4000]


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_a_wrongly_typed_value_is_quarantined_with_its_field(field: MeasuredField) -> None:
    document = batch([]) | {"readings": [reading(1, 1000, **{field.name: "7"})]}
    [parsed] = parse_submission(document, 1000, ARRIVAL_MS).readings
    assert parsed.measurement is None
    assert parsed.problem is not None and parsed.problem.startswith(f"{field.name} must be ")
    assert parsed.problem.endswith("got a string")


def test_an_integer_too_large_for_a_float_is_quarantined() -> None:
    document = batch([]) | {"readings": [reading(1, 1000, voltage_v=10**400)]}
    [parsed] = parse_submission(document, 1000, ARRIVAL_MS).readings
    assert parsed.measurement is None
    assert parsed.problem == "voltage_v is too large to be a number"


def test_the_firmware_reset_report_is_read() -> None:
    report = {"cause": "watchdog", "stage": "send", "watchdog_resets": 3}
    parsed = parse_submission(batch([]) | {"reset": report}, 1000, ARRIVAL_MS)
    assert parsed.reset == ResetReport("watchdog", "send", 3)
    power_on = {"cause": "power_on", "watchdog_resets": 0}
    assert parse_submission(batch([]) | {"reset": power_on}, 1000, ARRIVAL_MS).reset == (
        ResetReport("power_on", None, 0)
    )
    assert parse_submission(batch([]), 1000, ARRIVAL_MS).reset is None


@pytest.mark.parametrize(
    "report",
    [
        [],
        {"cause": "watchdog"},
        {"cause": "", "watchdog_resets": 0},
        {"cause": "x", "watchdog_resets": -1},
    ],
)
def test_a_malformed_reset_report_refuses_the_request(report: object) -> None:
    with pytest.raises(PayloadError, match="reset"):
        parse_submission(batch([]) | {"reset": report}, 1000, ARRIVAL_MS)
