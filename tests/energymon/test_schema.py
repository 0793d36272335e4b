"""The table of a reading's fields against the types built on it, the wire and the docs."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energymon.lineproto import format_line
from energymon.modbus import MEASUREMENT_REGISTERS
from energymon.schema import (
    FIELDS,
    MEASUREMENT,
    MeasuredField,
    Measurement,
    RawMeasurement,
    Reading,
    reading_series,
    validated_reading_line,
)
from energymon.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
RANGED = [f for f in FIELDS if f.valid is not None]
VALID = Measurement(230.0, 1.5, 345.0, 1000, 50.0, 0.98, False)


def test_measurement_holds_the_table_in_its_order_and_types() -> None:
    assert [f.name for f in dataclasses.fields(Measurement)] == [f.name for f in FIELDS]
    assert typing.get_type_hints(Measurement) == {f.name: f.kind for f in FIELDS}


def test_raw_measurement_holds_the_register_values_in_the_table_order() -> None:
    assert [f.name for f in dataclasses.fields(RawMeasurement)] == [f.raw_name for f in FIELDS]
    assert typing.get_type_hints(RawMeasurement) == {
        f.raw_name: bool if f.kind is bool else int for f in FIELDS
    }


def test_the_fields_use_each_input_register_once() -> None:
    registers = [r for f in FIELDS for r in f.registers]
    assert sorted(registers) == list(range(MEASUREMENT_REGISTERS))


def test_only_floats_have_decimals() -> None:
    assert all(f.kind is float for f in FIELDS if f.decimals)


def test_registers_scale_to_physical_units() -> None:
    raw = RawMeasurement(2257, 108, 244, 38, 500, 100, True)
    assert raw.to_measurement() == Measurement(225.7, 0.108, 24.4, 38, 50.0, 1.0, True)
    assert isinstance(raw.to_measurement().energy_wh, int)


@pytest.mark.parametrize("field", RANGED, ids=lambda f: f.name)
def test_the_range_is_inclusive_and_checked(field: MeasuredField) -> None:
    assert field.valid is not None
    for inside in (field.valid.low, field.valid.high):
        assert dataclasses.replace(VALID, **{field.name: field.kind(inside)}).problem() is None
    step = 10**-field.decimals
    for outside in (field.valid.low - step, field.valid.high + step):
        value = field.kind(outside)
        problem = dataclasses.replace(VALID, **{field.name: value}).problem()
        assert problem == (
            f"{field.name} {value}{f' {field.unit}' if field.unit else ''} is outside the "
            f"meter's range {field.valid}{f' {field.unit}' if field.unit else ''}"
        )
    if field.kind is float:
        problem = dataclasses.replace(VALID, **{field.name: math.nan}).problem()
        assert problem == f"{field.name} is not a finite number"


def test_range_text_is_plain() -> None:
    texts = {f.name: str(f.valid) for f in RANGED}
    assert texts["voltage_v"] == "80..260"
    assert texts["energy_wh"] == "0..9999990"


def test_line_is_the_generic_format_of_the_same_fields() -> None:
    reading = Reading("mega 01", "pzem=1", 17, 1041, 1_764_045_600_000, VALID)
    fields = {f.name: getattr(VALID, f.name) for f in FIELDS} | {"boot": 17, "seq": 1041}
    tags = {"home": "h,1", "device": "mega 01", "sensor": "pzem=1"}
    assert reading.to_line("h,1") == format_line(MEASUREMENT, tags, fields, 1_764_045_600_000)


def test_line_writes_each_field_as_its_declared_type() -> None:
    whole = Measurement(230, 2, 460, 1000, 50, 1, False)
    line = Reading("d", "s", 1, 1, 0, whole).to_line("h")
    assert " voltage_v=230.0,current_a=2.0,power_w=460.0,energy_wh=1000i," in line
    assert ",frequency_hz=50.0,power_factor=1.0,alarm=false,boot=1i,seq=1i " in line


measurements = st.builds(
    Measurement,
    st.floats(80, 260),
    st.floats(0, 100),
    st.floats(0, 23_000),
    st.integers(0, 9_999_990),
    st.floats(45, 65),
    st.floats(0, 1),
    st.booleans(),
)


@given(measurements, st.integers(0, 2**32 - 1), st.integers(1, 2**53), st.integers(0, 2**62))
def test_a_validated_readings_line_is_its_checked_line(
    m: Measurement, boot: int, seq: int, time_ms: int
) -> None:
    assert m.problem() is None
    reading = Reading("mega 01", "pzem=1", boot, seq, time_ms, m)
    series = reading_series("h,1", "mega 01", "pzem=1")
    assert validated_reading_line(series, m.values(), boot, seq, time_ms) == reading.to_line("h,1")


# --- the docs ------------------------------------------------------------------------------------


def _rows(text: str, first_cell: str) -> dict[str, list[str]]:
    """Cells of the markdown table rows whose first cells (up to a field's name) match."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 1 and re.fullmatch(first_cell, " | ".join(cells[:-2])):
            rows[cells[-3].strip("`")] = cells[-2:]
    return rows


def test_api_doc_lists_the_fields_their_types_and_ranges() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    reading_table = text.split("Each reading:", 1)[1].split("\n\n")[1]
    rows = _rows(reading_table, r"`\w+`")
    json_types = {float: "number", int: "integer", bool: "boolean"}
    assert list(rows) == ["seq", "uptime_ms", "sensor", *(f.name for f in FIELDS)]
    for f in FIELDS:
        kind, unit_range = rows[f.name]
        assert kind == json_types[f.kind], f.name
        if f.valid is not None:
            bounds = str(f.valid).replace("..", "\N{EN DASH}")
            expected = f"{f.unit}, {bounds}" if f.unit else bounds
            assert unit_range == expected or unit_range.startswith(f"{expected} "), f.name
    default = Settings.model_fields["max_readings_per_request"].default
    assert f"| array, 0 to {default} items |" in text
    assert f"more than {default} readings" in text


def test_api_doc_states_each_fields_decimals() -> None:
    text = " ".join((DOCS / "api.md").read_text(encoding="utf-8").split())
    words = {1: "one", 2: "two", 3: "three"}
    for f in FIELDS:
        if f.decimals:
            step = f"{10**-f.decimals:.{f.decimals}f}" + (f" {f.unit}" if f.unit else "")
            assert re.search(
                rf"`{f.name}` with {words[f.decimals]}( decimal)? \(raw {step}\)", text
            )
        elif f.kind is int:
            assert f"`{f.name}` as an integer" in text


def test_schema_doc_lists_the_fields_and_their_types() -> None:
    rows = _rows((DOCS / "schema.md").read_text(encoding="utf-8"), r"field \| `\w+`")
    influx_types = {float: "float", int: "integer", bool: "boolean"}
    assert list(rows)[: len(FIELDS)] == [f.name for f in FIELDS]
    for f in FIELDS:
        kind, meaning = rows[f.name]
        assert kind == influx_types[f.kind], f.name
        assert f.unit in meaning, f.name
