"""The reading schema: what a PZEM-004T measures, how it is checked, and how it is stored.

The dashboards, the replicator and the firmware all depend on these names; `docs/schema.md`
describes them for people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from energymon.lineproto import format_line

MEASUREMENT = "electricity"
QUARANTINE_MEASUREMENT = "energymon_quarantine"
HEALTH_MEASUREMENT = "energymon_health"

# Every measurement the collector writes; the replicator copies all of them.
COLLECTOR_MEASUREMENTS = (MEASUREMENT, QUARANTINE_MEASUREMENT, HEALTH_MEASUREMENT)


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float
    unit: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


# The PZEM-004T v3 measuring ranges (100 A model, which includes the 10 A one).
PHYSICAL_RANGES: dict[str, Range] = {
    "voltage_v": Range(80.0, 260.0, "V"),
    "current_a": Range(0.0, 100.0, "A"),
    "power_w": Range(0.0, 23_000.0, "W"),
    "energy_wh": Range(0, 9_999_990, "Wh"),
    "frequency_hz": Range(45.0, 65.0, "Hz"),
    "power_factor": Range(0.0, 1.0, ""),
}
MEASURED_FIELDS = (*PHYSICAL_RANGES, "alarm")


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
        for name, allowed in PHYSICAL_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                return f"{name} is not a finite number"
            if not allowed.contains(value):
                unit = f" {allowed.unit}" if allowed.unit else ""
                return (
                    f"{name} {value}{unit} is outside the meter's range "
                    f"{allowed.low:g}..{allowed.high:g}{unit}"
                )
        return None


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

    def to_measurement(self) -> Measurement:
        return Measurement(
            voltage_v=self.voltage_dv / 10,
            current_a=self.current_ma / 1000,
            power_w=self.power_dw / 10,
            energy_wh=self.energy_wh,
            frequency_hz=self.frequency_dhz / 10,
            power_factor=self.power_factor_centi / 100,
            alarm=self.alarm,
        )


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
        m = self.measurement
        return format_line(
            MEASUREMENT,
            {"home": home, "device": self.device, "sensor": self.sensor},
            {
                "voltage_v": float(m.voltage_v),
                "current_a": float(m.current_a),
                "power_w": float(m.power_w),
                "energy_wh": int(m.energy_wh),
                "frequency_hz": float(m.frequency_hz),
                "power_factor": float(m.power_factor),
                "alarm": bool(m.alarm),
                "boot": self.boot,
                "seq": self.seq,
            },
            self.time_ms,
        )


@dataclass(frozen=True, slots=True)
class QuarantinedReading:
    """A reading that was received and acknowledged but is not a valid measurement."""

    device: str
    sensor: str
    boot: int
    seq: int
    time_ms: int
    reason: str
    payload_json: str

    def to_line(self, home: str) -> str:
        return format_line(
            QUARANTINE_MEASUREMENT,
            {"home": home, "device": self.device, "sensor": self.sensor},
            {
                "reason": self.reason,
                "payload": self.payload_json,
                "boot": self.boot,
                "seq": self.seq,
            },
            self.time_ms,
        )
