"""The reading schema: what a PZEM-004T measures, how it is checked, and how it is stored.

The dashboards, the replicator and the firmware all depend on these names; `docs/schema.md`
describes them for people.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

from energymon.lineproto import PointFormat, format_line

MEASUREMENT = "electricity"
QUARANTINE_MEASUREMENT = "energymon_quarantine"
HEALTH_MEASUREMENT = "energymon_health"

_REGISTER_BITS = 16

# A measurement's values in the order of `FIELDS`, each of its field's kind.
MeasuredValues = tuple[float | int | bool, ...]


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{_plain(self.low)}..{_plain(self.high)}"


def _plain(bound: float) -> str:
    """A bound as people write it: 80, 0.5 or 9999990, never 80.0 or 9.99999e+06."""
    return str(int(bound)) if bound == int(bound) else repr(float(bound))


@dataclass(frozen=True, slots=True)
class MeasuredField:
    """One quantity of a reading: where the meter keeps it, how it travels, what is possible.

    `name` is the key in the HTTP body and in InfluxDB, in physical units; `raw_name` is the
    register value, an integer in steps of the meter's resolution (`10**-decimals` of `unit`).
    """

    name: str
    label: str
    raw_name: str
    # Input registers holding the value, low word first as the meter sends it.
    registers: tuple[int, ...]
    decimals: int
    kind: type[float] | type[int] | type[bool]
    # The meter's measuring range; None where every value the register holds is meaningful.
    valid: Range | None
    unit: str

    @property
    def raw_max(self) -> int:
        return (1 << (_REGISTER_BITS * len(self.registers))) - 1

    @property
    def scale(self) -> int:
        """Register steps per unit."""
        return int(10**self.decimals)


# The PZEM-004T v3 (100 A model, which includes the 10 A one), in register order. Every reader,
# writer and validator of a reading iterates this table; Measurement and RawMeasurement hold
# its fields in this order (a test checks).
FIELDS: tuple[MeasuredField, ...] = (
    # name, label, raw_name, registers, decimals, kind, valid, unit
    MeasuredField("voltage_v", "voltage", "voltage_dv", (0,), 1, float, Range(80, 260), "V"),
    MeasuredField("current_a", "current", "current_ma", (1, 2), 3, float, Range(0, 100), "A"),
    MeasuredField("power_w", "power", "power_dw", (3, 4), 1, float, Range(0, 23_000), "W"),
    MeasuredField("energy_wh", "energy", "energy_wh", (5, 6), 0, int, Range(0, 9_999_990), "Wh"),
    MeasuredField(
        "frequency_hz", "frequency", "frequency_dhz", (7,), 1, float, Range(45, 65), "Hz"
    ),
    MeasuredField(
        "power_factor", "power factor", "power_factor_centi", (8,), 2, float, Range(0, 1), ""
    ),
    MeasuredField("alarm", "power alarm", "alarm", (9,), 0, bool, None, ""),
)

# Precomputed once: these run for every reading.
_RANGE_CHECKS = tuple(
    (f.name, f.valid, f" {f.unit}" if f.unit else "") for f in FIELDS if f.valid is not None
)
_PHYSICAL = attrgetter(*(f.name for f in FIELDS))
_RAW = attrgetter(*(f.raw_name for f in FIELDS))
_SCALES = tuple(f.scale if f.kind is float else None for f in FIELDS)
_POINT = PointFormat(
    MEASUREMENT, [*((f.name, f.kind) for f in FIELDS), ("boot", int), ("seq", int)]
)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One answer of a PZEM-004T, in physical units."""

    voltage_v: float
    current_a: float
    power_w: float
    energy_wh: int
    frequency_hz: float
    power_factor: float
    alarm: bool

    def problem(self) -> str | None:
        """Why this measurement is physically impossible for the meter, or None."""
        for name, allowed, unit in _RANGE_CHECKS:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                return f"{name} is not a finite number"
            if not allowed.contains(value):
                return f"{name} {value}{unit} is outside the meter's range {allowed}{unit}"
        return None

    @classmethod
    def from_values(cls, values: Iterable[float | int | bool]) -> Measurement:
        """From values in the order of `FIELDS`, each of its field's kind."""
        return cls(*values)  # type: ignore[arg-type]

    def values(self) -> MeasuredValues:
        """The values in the order of `FIELDS`."""
        return _PHYSICAL(self)


@dataclass(frozen=True, slots=True)
class RawMeasurement:
    """The meter's register values: integers in the meter's own units, exactly as on the wire."""

    voltage_dv: int
    current_ma: int
    power_dw: int
    energy_wh: int
    frequency_dhz: int
    power_factor_centi: int
    alarm: bool

    @classmethod
    def from_values(cls, values: Iterable[int | bool]) -> RawMeasurement:
        """From register values in the order of `FIELDS`."""
        return cls(*values)  # type: ignore[arg-type]

    def values(self) -> tuple[int | bool, ...]:
        """The values in the order of `FIELDS`."""
        return _RAW(self)

    def to_measurement(self) -> Measurement:
        values = zip(_RAW(self), _SCALES, strict=True)
        return Measurement.from_values(v if scale is None else v / scale for v, scale in values)


@dataclass(frozen=True, slots=True)
class Reading:
    """A measurement placed in time and attributed to a meter."""

    device: str
    sensor: str
    boot: int
    seq: int
    time_ms: int
    measurement: Measurement

    def to_line(self, home: str) -> str:
        series = reading_series(home, self.device, self.sensor)
        return reading_line(series, self.measurement.values(), self.boot, self.seq, self.time_ms)


# A home has a few meters, and every one of their points starts the same way.
_SERIES_CACHE_SIZE = 4096


@lru_cache(maxsize=_SERIES_CACHE_SIZE)
def reading_series(home: str, device: str, sensor: str) -> str:
    """The escaped measurement and tags of one meter's readings."""
    return _POINT.series({"home": home, "device": device, "sensor": sensor})


def reading_line(series: str, values: MeasuredValues, boot: int, seq: int, time_ms: int) -> str:
    """A reading's point in a series made by `reading_series`, from its measurement's values
    (`Measurement.values()`): the hot path's formatter."""
    return _POINT.format_in(series, (*values, boot, seq), time_ms)


def validated_reading_line(
    series: str, values: MeasuredValues, boot: int, seq: int, time_ms: int
) -> str:
    """`reading_line` for values that passed a reading's validation (each of its field's type,
    within its range) and a boot, seq and time within 64 bits: the store's formatter."""
    return _POINT.format_validated(series, (*values, boot, seq), time_ms)


@dataclass(frozen=True, slots=True)
class QuarantinedReading:
    """A reading that was received and acknowledged but is not a valid measurement, or could not
    be placed in time. It is stamped with `time_ms`, when it was quarantined (unique per
    collector), and keeps the time it would have had, where one could be computed."""

    device: str
    sensor: str
    boot: int
    seq: int
    time_ms: int
    reason: str
    payload_json: str
    reading_time_ms: int | None = None

    def to_line(self, home: str) -> str:
        fields: dict[str, str | int] = {
            "reason": self.reason,
            "payload": self.payload_json,
            "boot": self.boot,
            "seq": self.seq,
        }
        if self.reading_time_ms is not None:
            fields["reading_time_ms"] = self.reading_time_ms
        return format_line(
            QUARANTINE_MEASUREMENT,
            {"home": home, "device": self.device, "sensor": self.sensor},
            fields,
            self.time_ms,
        )
