"""The canonical encoder: valid JSON, exact decimals, names that round-trip, firmware escapes."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energymon.schema import FIELDS, RawMeasurement
from simulator.wire import (
    RESET_CAUSES,
    RESET_STAGES,
    DeviceReading,
    ResetReport,
    WireEncodingError,
    encode_batch,
    encode_name,
)

U32 = st.integers(0, 0xFFFF_FFFF)
U64 = st.integers(0, 2**64 - 1)

# Every value each field's registers can hold.
raw_measurements = st.builds(
    RawMeasurement,
    *(st.booleans() if f.kind is bool else st.integers(0, f.raw_max) for f in FIELDS),
)
# Any string that has a UTF-8 form: lone surrogates are the only ones without.
names = st.text(st.characters(codec="utf-8"), max_size=80)
readings = st.builds(DeviceReading, seq=U32, uptime_ms=U64, sensor=names, raw=raw_measurements)

SCALED = [f for f in FIELDS if f.decimals]


def _raw(**fields: int | bool) -> RawMeasurement:
    base: dict[str, int | bool] = {
        "voltage_dv": 2300,
        "current_ma": 0,
        "power_dw": 0,
        "energy_wh": 0,
        "frequency_dhz": 500,
        "power_factor_centi": 100,
        "alarm": False,
    }
    return RawMeasurement(**{**base, **fields})  # type: ignore[arg-type]


@given(
    device=names,
    boot=U32,
    uptime_ms=U64,
    batch=st.lists(readings, max_size=8),
    dropped=U32,
    meter_errors=st.dictionaries(names, U32, max_size=4),
)
def test_batch_parses_to_the_exact_raw_values(
    *,
    device: str,
    boot: int,
    uptime_ms: int,
    batch: list[DeviceReading],
    dropped: int,
    meter_errors: dict[str, int],
) -> None:
    body = encode_batch(device, boot, uptime_ms, batch, dropped=dropped, meter_errors=meter_errors)
    outside_strings = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", body)
    assert not re.search(rb"[ \t\r\n]", outside_strings)
    parsed = json.loads(body.decode("utf-8"), parse_float=Decimal)
    assert parsed["device"] == device
    assert (parsed["boot"], parsed["uptime_ms"]) == (boot, uptime_ms)
    assert parsed.get("dropped", 0) == dropped
    assert ("dropped" in parsed) == (dropped != 0)
    non_zero = {s: n for s, n in meter_errors.items() if n}
    assert parsed.get("meter_errors", {}) == non_zero
    assert list(parsed.get("meter_errors", {})) == list(non_zero)
    assert len(parsed["readings"]) == len(batch)
    for got, reading in zip(parsed["readings"], batch, strict=True):
        assert (got["seq"], got["uptime_ms"], got["sensor"]) == (
            reading.seq,
            reading.uptime_ms,
            reading.sensor,
        )
        assert got["energy_wh"] == reading.raw.energy_wh
        assert got["alarm"] is reading.raw.alarm
        for f in SCALED:
            value = got[f.name]
            assert isinstance(value, Decimal)
            assert value.as_tuple().exponent == -f.decimals
            assert value == Decimal(getattr(reading.raw, f.raw_name)).scaleb(-f.decimals)


@given(names)
def test_names_round_trip_and_follow_the_firmware_rule(name: str) -> None:
    encoded = encode_name(name)
    assert json.loads(encoded.decode("utf-8")) == name
    assert encoded == json.dumps(name, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ('a"b', b'"a\\"b"'),
        ("a\\b", b'"a\\\\b"'),
        ("line\nfeed\ttab\r\b\f", b'"line\\nfeed\\ttab\\r\\b\\f"'),
        ("\x00\x1f\x0b\x7f", b'"\\u0000\\u001f\\u000b\x7f"'),
        ("Küche €🛁", '"Küche €🛁"'.encode()),
        ("\u2028", '"\u2028"'.encode()),
    ],
)
def test_escape_examples(name: str, encoded: bytes) -> None:
    assert encode_name(name) == encoded


def test_reading_numbers_come_from_registers() -> None:
    reading = DeviceReading(7, 1500, "pzem1", _raw(voltage_dv=2298, current_ma=5, power_dw=3))
    body = encode_batch("mega-01", 1, 2000, [reading])
    assert body == (
        b'{"device":"mega-01","boot":1,"uptime_ms":2000,"readings":[{"seq":7,"uptime_ms":1500,'
        b'"sensor":"pzem1","voltage_v":229.8,"current_a":0.005,"power_w":0.3,"energy_wh":0,'
        b'"frequency_hz":50.0,"power_factor":1.00,"alarm":false}]}'
    )


@pytest.mark.parametrize(
    "raw",
    [
        _raw(voltage_dv=-1),
        _raw(voltage_dv=0x1_0000),
        _raw(current_ma=2**32),
        _raw(energy_wh=-5),
        _raw(power_factor_centi=True),
        _raw(alarm=1),
    ],
)
def test_values_the_firmware_cannot_hold_are_refused(raw: RawMeasurement) -> None:
    with pytest.raises(WireEncodingError):
        encode_batch("mega-01", 1, 2000, [DeviceReading(1, 0, "pzem1", raw)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"boot": -1},
        {"boot": 2**32},
        {"uptime_ms": -1},
        {"uptime_ms": 2**64},
        {"dropped": -3},
        {"dropped": 2**32},
        {"meter_errors": {"pzem1": -1}},
    ],
)
def test_envelope_counts_beyond_the_firmware_are_refused(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"device": "mega-01", "boot": 1, "uptime_ms": 0, "readings": []}
    with pytest.raises(WireEncodingError):
        encode_batch(**{**args, **kwargs})  # type: ignore[arg-type]


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(WireEncodingError):
        encode_name("\udc80")


@pytest.mark.parametrize(("seq", "uptime_ms"), [(2**32, 0), (1, 2**64), (1, -1), (-1, 0)])
def test_reading_counters_beyond_the_firmware_are_refused(seq: int, uptime_ms: int) -> None:
    reading = DeviceReading(seq, uptime_ms, "pzem1", _raw())
    with pytest.raises(WireEncodingError):
        encode_batch("mega-01", 1, 0, [reading])


@st.composite
def reset_reports(draw: st.DrawFn) -> ResetReport:
    cause = draw(st.sampled_from(RESET_CAUSES))
    with_stage = cause in ("watchdog", "requested") and draw(st.booleans())
    stage = draw(st.sampled_from(RESET_STAGES)) if with_stage else None
    return ResetReport(cause, draw(U32), stage)


@given(reset=reset_reports(), dropped=U32, meter_errors=st.dictionaries(names, U32, max_size=3))
def test_reset_goes_after_the_health_counters_and_before_the_readings(
    *, reset: ResetReport, dropped: int, meter_errors: dict[str, int]
) -> None:
    body = encode_batch(
        "mega-01", 4, 9000, [], dropped=dropped, meter_errors=meter_errors, reset=reset
    )
    parsed = json.loads(body.decode("utf-8"))
    assert list(parsed)[-2:] == ["reset", "readings"]
    expected = {"cause": reset.cause, "watchdog_resets": reset.watchdog_resets}
    if reset.stage is not None:
        expected["stage"] = reset.stage
    assert parsed["reset"] == expected
    keys = list(parsed["reset"])
    assert (keys[0], keys[-1]) == ("cause", "watchdog_resets")


def test_reset_example() -> None:
    body = encode_batch(
        "mega-01", 2, 500, [], reset=ResetReport("watchdog", 3, "send"), meter_errors={"pzem1": 1}
    )
    assert body == (
        b'{"device":"mega-01","boot":2,"uptime_ms":500,"meter_errors":{"pzem1":1},'
        b'"reset":{"cause":"watchdog","stage":"send","watchdog_resets":3},"readings":[]}'
    )


@pytest.mark.parametrize(
    "reset",
    [
        ResetReport("brown_out", 0),
        ResetReport("power_on", 0, "send"),
        ResetReport("external", 1, "dhcp"),
        ResetReport("watchdog", 1, "sending"),
        ResetReport("watchdog", -1, "send"),
        ResetReport("watchdog", 2**32, "send"),
        ResetReport("requested", True, "network"),  # type: ignore[arg-type]
    ],
)
def test_resets_the_firmware_cannot_report_are_refused(reset: ResetReport) -> None:
    with pytest.raises(WireEncodingError):
        encode_batch("mega-01", 1, 0, [], reset=reset)
