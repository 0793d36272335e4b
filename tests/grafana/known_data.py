"""Known data, written with the project's own line formats, that every query runs against.

Minute k is `now - k minutes`. Home `home-a` (device `mega-01`: meters `mains` and `heatpump`;
a second device `garage` that went quiet) is live; home `home-b` (device `pi-01`, meter `solar`)
stopped 40 minutes ago.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from collector.health import CollectorHealth, CounterHealth, DeviceHealth, InfluxHealth, SpoolHealth
from energymon.influx import InfluxClient
from energymon.schema import Measurement, QuarantinedReading, Reading
from replicator.health import ReplicatorHealth, VerifySummary

MINUTE_MS = 60_000
MAINS_GAP = range(81, 101)  # minutes without a mains reading
MAINS_RESET_AT = 50  # the mains counter was reset just before this minute's reading
ALARM_MINUTES = 3  # the heat pump's alarm is on for the newest readings
SPOOLING_MINUTES = 3
REFUSING_MINUTES = 5
QUARANTINE_MINUTES = (5, 4)


@dataclass(frozen=True)
class Meter:
    home: str
    device: str
    sensor: str
    voltage_v: float
    current_a: float
    power_w: float
    frequency_hz: float
    power_factor: float
    wh_per_minute: int
    minutes: range
    energy: dict[int, int] = field(default_factory=dict)  # minute -> counter

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.home, self.device, self.sensor)

    def consumption_wh(self) -> int:
        """What the meter measured: counter increments, and after a reset the new value."""
        values = [self.energy[k] for k in sorted(self.energy, reverse=True)]
        return sum(b - a if b >= a else b for a, b in itertools.pairwise(values))


MAINS = Meter("home-a", "mega-01", "mains", 231.5, 2.6, 600.0, 50.0, 0.98, 10, range(180, 0, -1))
HEATPUMP = Meter(
    "home-a", "mega-01", "heatpump", 229.0, 5.3, 1200.0, 49.9, 0.91, 20, range(180, 0, -1)
)
SOLAR = Meter("home-b", "pi-01", "solar", 240.0, 1.3, 300.0, 50.1, 0.99, 5, range(180, 39, -1))
METERS = (MAINS, HEATPUMP, SOLAR)


def _reading_lines(now_ms: int) -> list[str]:
    lines = []
    for meter in METERS:
        counter = 5000
        for k in meter.minutes:
            counter += meter.wh_per_minute
            if meter is MAINS and k == MAINS_RESET_AT:
                counter = 0
            if meter is MAINS and k in MAINS_GAP:
                continue
            meter.energy[k] = counter
            m = Measurement(
                meter.voltage_v,
                meter.current_a,
                meter.power_w,
                counter,
                meter.frequency_hz,
                meter.power_factor,
                alarm=meter is HEATPUMP and k <= ALARM_MINUTES,
            )
            reading = Reading(meter.device, meter.sensor, 1, 181 - k, now_ms - k * MINUTE_MS, m)
            lines.append(reading.to_line(meter.home))
    for k in QUARANTINE_MINUTES:
        q = QuarantinedReading(
            "mega-01",
            "mains",
            1,
            1000 + k,
            now_ms - k * MINUTE_MS,
            "voltage_v 400.0 V is outside the meter's range 80..260 V",
            '{"voltage_v": 400.0}',
        )
        lines.append(q.to_line("home-a"))
    return lines


def collector_figures(k: int, devices: dict[str, DeviceHealth], now_ms: int) -> CollectorHealth:
    """The collector's health report at minute k."""
    spooling = k <= SPOOLING_MINUTES
    return CollectorHealth(
        now_ms=now_ms,
        influx=InfluxHealth(not spooling, "http://127.0.0.1:8086"),
        spool=SpoolHealth(
            depth_points=120 if spooling else 0,
            size_bytes=30_000 if spooling else 0,
            max_bytes=1 << 29,
            full_refusals=max(0, REFUSING_MINUTES + 1 - k),
        ),
        parked_points=7,
        devices=devices,
        counters=CounterHealth(accepted=1000 - k, duplicates=0, quarantined=2, spooled_points=0),
    )


def device_figures(age_s: float | None, contact_s: float) -> DeviceHealth:
    return DeviceHealth(
        boot=1,
        last_seq=None if age_s is None else 180,
        last_reading_ms=None,
        reading_age_s=age_s,
        last_contact_age_s=contact_s,
        dropped=4,
        meter_errors={"mains": 1, "heatpump": 2},
    )


def _health_lines(now_ms: int) -> list[str]:
    lines = []
    for k in range(30, 0, -1):
        t = now_ms - k * MINUTE_MS
        devices = {
            "mega-01": device_figures(2.0, 1.0),
            "garage": device_figures(900.0 + 60 * (30 - k), 5.0),
        }
        lines += collector_figures(k, devices, t).to_lines("home-a")
        lines += ReplicatorHealth(
            t,
            "https://cloud",
            t - 1_200_000,
            5000,
            t - 1_200_000,
            3,
            "timeout",
            2,
            VerifySummary(t, 72, 1, 0, 1),
        ).to_lines("home-a")
    for k in range(60, 39, -1):
        t = now_ms - k * MINUTE_MS
        lines += collector_figures(99, {"pi-01": device_figures(1.0, 1.0)}, t).to_lines("home-b")
        lines += ReplicatorHealth(
            t, "https://cloud", t - 2000, 0, t, 0, None, 0, VerifySummary(t, 72, 0, 0, 0)
        ).to_lines("home-b")
    return lines


@dataclass
class Known:
    now_ms: int = 0


KNOWN = Known()


def write_known_data(client: InfluxClient, now_ms: int) -> None:
    KNOWN.now_ms = now_ms
    client.write(_reading_lines(now_ms) + _health_lines(now_ms))
