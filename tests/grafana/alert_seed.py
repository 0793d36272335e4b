"""Seeded faults for the alert rules, a week and a day long, in the contract's schema.

T0 is 23:30 local time (Asia/Jakarta) eight days ago. Home `home-f` has every fault between T0
and FAULT_AT (T0 + 15 min) on its mains meter and pipeline, and its device `garage` (meter
`pzem1`) goes silent at T0 for good while the collector keeps reporting it. Home `home-q` goes
silent entirely at T0 - 10 min. Home `home-c` is clean throughout, with the traps a careless
rule falls into: a sub-meter that would break the contracted VA and the energy budget if it
were added to the home total, and a standby lamp with a poor power factor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from energymon.health import health_line
from energymon.influx import InfluxClient
from energymon.lineproto import format_line
from energymon.schema import Measurement, QuarantinedReading, Reading

MINUTE_MS = 60_000
DAY_MS = 86_400_000
LOCAL_OFFSET_MS = 7 * 3_600_000  # Asia/Jakarta, no daylight saving


@dataclass(frozen=True)
class Times:
    t0_ms: int

    @property
    def fault_at(self) -> int:
        return self.t0_ms + 15 * MINUTE_MS

    @property
    def before(self) -> int:
        return self.t0_ms - 30 * MINUTE_MS

    @property
    def silences(self) -> dict[str, int]:
        """Evaluation times after a silence of 1 h, 1 day and 1 week."""
        return {
            "1h": self.t0_ms + 3_600_000,
            "1d": self.t0_ms + DAY_MS,
            "1w": self.t0_ms + 7 * DAY_MS,
        }

    @property
    def schedule(self) -> list[int]:
        """Every evaluation, in order: the steps between let `for` elapse."""
        steps = [self.before, *(self.t0_ms + k * MINUTE_MS for k in (5, 10, 15))]
        return steps + list(self.silences.values())

    @property
    def end_ms(self) -> int:
        return self.t0_ms + 7 * DAY_MS + 5 * MINUTE_MS


def times_for(now_ms: int) -> Times:
    start = now_ms - 8 * DAY_MS
    local_midnight = (start + LOCAL_OFFSET_MS) // DAY_MS * DAY_MS - LOCAL_OFFSET_MS
    return Times(local_midnight + DAY_MS - 30 * MINUTE_MS)


@dataclass(frozen=True)
class Meter:
    home: str
    device: str
    sensor: str
    role: str
    voltage_v: float
    power_w: float
    power_factor: float
    va_1m: float  # the 1-minute rollup's mean apparent power
    day_wh: float


F_MAINS = Meter("home-f", "mega-f", "mains", "mains", 225.0, 600.0, 0.95, 700.0, 3000.0)
F_PUMP = Meter("home-f", "mega-f", "pump", "submeter", 225.0, 400.0, 0.9, 900.0, 3000.0)
F_GARAGE = Meter("home-f", "garage", "pzem1", "circuit", 225.0, 50.0, 0.9, 60.0, 100.0)
C_MAINS = Meter("home-c", "mega-c", "mains", "mains", 226.0, 800.0, 0.95, 1000.0, 4000.0)
C_PUMP = Meter("home-c", "mega-c", "pump", "submeter", 226.0, 500.0, 0.9, 800.0, 3000.0)
C_LAMP = Meter("home-c", "mega-c", "lamp", "circuit", 226.0, 20.0, 0.5, 40.0, 500.0)
Q_MAINS = Meter("home-q", "pi-q", "mains", "mains", 224.0, 300.0, 0.95, 350.0, 50000.0)
METERS = (F_MAINS, F_PUMP, F_GARAGE, C_MAINS, C_PUMP, C_LAMP, Q_MAINS)
HOME_SETTINGS = {
    "home-f": {"daily_budget_wh": 5000.0, "daily_budget_cost": 8000.0},
    "home-c": {"daily_budget_wh": 5000.0, "daily_budget_cost": 8000.0},
    "home-q": {"daily_budget_wh": 0.0, "daily_budget_cost": 0.0},
}
PRICE_PER_WH = 1.444  # IDR; the cost budget follows the energy one


class Seed:
    def __init__(self, times: Times) -> None:
        self.t = times

    def stops_ms(self, home: str, device: str) -> int:
        """After this instant nothing of this home (device) is written."""
        if home == "home-q":
            return self.t.t0_ms - 10 * MINUTE_MS
        if device == "garage":
            return self.t.t0_ms
        return self.t.end_ms

    def faulty(self, t_ms: int) -> bool:
        return self.t.t0_ms <= t_ms <= self.t.fault_at

    def minutes(self, start_ms: int, end_ms: int, step_min: int = 1) -> Iterator[int]:
        yield from range(start_ms, end_ms + 1, step_min * MINUTE_MS)

    def reading_lines(self) -> Iterator[str]:
        start = self.t.t0_ms - 2 * 3_600_000
        for m in METERS:
            for t in self.minutes(start, min(self.stops_ms(m.home, m.device), self.t.end_ms)):
                fault = m is F_MAINS and self.faulty(t)
                voltage = 190.0 if fault else m.voltage_v
                pf = 0.7 if fault else m.power_factor
                measurement = Measurement(
                    voltage,
                    round(m.power_w / voltage / pf, 3),
                    m.power_w,
                    int((t - start) / 3_600_000 * m.power_w),
                    50.0,
                    pf,
                    alarm=fault and t > self.t.fault_at - 3 * MINUTE_MS,
                )
                seq = (t - start) // MINUTE_MS
                yield Reading(m.device, m.sensor, 1, seq, t, measurement).to_line(m.home)
        for k in (4, 5):
            yield QuarantinedReading(
                F_MAINS.device,
                F_MAINS.sensor,
                1,
                9000 + k,
                self.t.fault_at - k * MINUTE_MS,
                "voltage_v 400.0 V is outside the meter's range 80..260 V",
                '{"voltage_v": 400.0}',
            ).to_line(F_MAINS.home)

    def health_times(self) -> list[int]:
        dense = set(self.minutes(self.t.t0_ms - 40 * MINUTE_MS, self.t.t0_ms + 40 * MINUTE_MS))
        sparse = set(self.minutes(self.t.t0_ms - 2 * 3_600_000, self.t.end_ms, 5))
        return sorted(dense | sparse)

    def health_lines(self) -> Iterator[str]:
        for t in self.health_times():
            for home in HOME_SETTINGS:
                if t > self.stops_ms(home, ""):
                    continue
                yield from self._home_health(home, t)

    def _home_health(self, home: str, t: int) -> Iterator[str]:
        fault = home == "home-f" and self.faulty(t)
        refusals = (t - self.t.t0_ms) // MINUTE_MS if fault else 0
        yield health_line(
            "collector",
            home,
            {
                "spool_points": 120 if fault else 0,
                "parked_points": 7 if fault else 0,
                "spool_full_refusals": refusals,
            },
            t,
        )
        yield health_line(
            "replicator",
            home,
            {
                "replication_lag_s": 1200.0 if fault else 5.0,
                "dead_letters": 2 if fault else 0,
                "verify_mismatched_hours": 1 if fault else 0,
                "consecutive_failures": 0,
            },
            t,
        )
        for m in METERS:
            if m.home != home:
                continue
            # The collector reports every known device and meter, silent or not.
            age_s = max(0, t - self.stops_ms(m.home, m.device)) / 1000 + 2.0
            yield health_line("collector", home, {"reading_age_s": age_s}, t, {"device": m.device})
            yield health_line(
                "meter",
                home,
                {"reading_age_s": age_s, "online": int(age_s < 30)},
                t,
                {"device": m.device, "sensor": m.sensor, "role": m.role},
            )
        yield format_line(
            "energymon_home",
            {"home": home},
            {
                "contracted_va": 1300.0,
                "nominal_voltage_v": 220.0,
                "voltage_low_v": 198.0,
                "voltage_high_v": 242.0,
                "min_power_factor": 0.85,
                **HOME_SETTINGS[home],
                "currency": "IDR",
                "timezone": "Asia/Jakarta",
            },
            t,
        )

    def rollup_lines(self) -> Iterator[str]:
        """1-minute rollups before every evaluation, daily rollups for every local day."""
        minutes = {t for e in self.t.schedule for t in self.minutes(e - 15 * MINUTE_MS, e)}
        for m in METERS:
            tags = {"home": m.home, "device": m.device, "sensor": m.sensor, "role": m.role}
            for t in sorted(minutes):
                if t > self.stops_ms(m.home, m.device):
                    continue
                va = 1500.0 if m is F_MAINS and self.faulty(t) else m.va_1m
                yield format_line(
                    "energymon_1m", tags, {"apparent_power_va_mean": va, "samples": 60}, t
                )
            first_day = self.t.t0_ms + 30 * MINUTE_MS - DAY_MS
            for day in range(first_day, self.t.end_ms, DAY_MS):
                if day > self.stops_ms(m.home, m.device):
                    continue
                wh = 6000.0 if m is F_MAINS and day == first_day else m.day_wh
                yield format_line(
                    "energymon_day",
                    tags,
                    {"energy_wh": wh, "cost": round(wh * PRICE_PER_WH, 2), "samples": 1440},
                    day,
                )

    def write(self, client: InfluxClient) -> None:
        lines = [*self.reading_lines(), *self.health_lines(), *self.rollup_lines()]
        for i in range(0, len(lines), 20_000):
            client.write(lines[i : i + 20_000])


def local_day(t_ms: int) -> timedelta:
    """Time since the local midnight (for assertions on the day boundary)."""
    return timedelta(milliseconds=(t_ms + LOCAL_OFFSET_MS) % DAY_MS)
