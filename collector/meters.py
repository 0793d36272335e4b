"""Known meters and the home's profile, for the health records Grafana's silence rules need.

A meter that falls silent must stay visible: a rule that looks for series "with data recently"
loses it once the silence is longer than its window. So the collector remembers every meter it
ever stored a reading of (the `known_meters` table of `collector.db`, kept by the rollup worker,
which sees every reading) and reports, every health interval, an `energymon_health` point
(`component=meter`) for each of them and for each meter the layout names, with an age that
grows while it is silent. Devices are reported from the same table, so a device the collector
has not heard since its restart keeps its point. `energymon_home` carries the home's settings
(limits, budgets, currency, time zone) so one cloud alert rule serves many homes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from energymon.health import health_line
from energymon.layout import Layout, Meter
from energymon.lineproto import FieldValue, format_line
from energymon.settings import Settings
from energymon.sqlitedb import SQLiteDB

HOME_MEASUREMENT = "energymon_home"
METER_COMPONENT = "meter"
# A meter is online while its newest reading is younger than this many expected intervals.
ONLINE_INTERVALS = 3

SCHEMA = """CREATE TABLE IF NOT EXISTS known_meters (
    device TEXT NOT NULL, sensor TEXT NOT NULL, last_reading_ms INTEGER NOT NULL,
    PRIMARY KEY (device, sensor))"""


def ensure_schema(db: SQLiteDB) -> None:
    with db.transaction() as conn:
        conn.execute(SCHEMA)


def remember(conn: sqlite3.Connection, newest_ms: Mapping[Meter, int]) -> None:
    """Record meters' newest readings inside the caller's transaction; never moves back."""
    conn.executemany(
        "INSERT INTO known_meters (device, sensor, last_reading_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (device, sensor) DO UPDATE "
        "SET last_reading_ms = max(last_reading_ms, excluded.last_reading_ms)",
        [(m.device, m.sensor, ms) for m, ms in newest_ms.items()],
    )


def known(db: SQLiteDB) -> dict[Meter, int]:
    """Every meter ever stored, with the time of its newest reading."""
    rows = db.fetch_all("SELECT device, sensor, last_reading_ms FROM known_meters")
    return {Meter(device, sensor): int(ms) for device, sensor, ms in rows}


@dataclass(frozen=True, slots=True)
class MeterReport:
    """Health records of the known meters and devices, and the home's profile."""

    settings: Settings
    layout: Layout
    started_ms: int

    def lines(
        self, seen: Mapping[Meter, int], reported_devices: Iterable[str], now_ms: int
    ) -> list[str]:
        """`seen`: meter -> newest reading; `reported_devices`: devices the collector's own
        device records already cover (heard since the start)."""
        home = self.settings.home
        online_s = ONLINE_INTERVALS * self.settings.meter_expected_interval_s
        lines = [self.home_line(now_ms)]
        for meter in sorted(set(seen) | set(self.layout.meters)):
            newest = seen.get(meter)
            age_s = (now_ms - (self.started_ms if newest is None else newest)) / 1000
            fields: dict[str, FieldValue] = {
                "reading_age_s": float(age_s),
                "online": int(newest is not None and age_s < online_s),
            }
            tags = {
                "device": meter.device,
                "sensor": meter.sensor,
                "role": self.layout.role(meter.device, meter.sensor),
            }
            lines.append(health_line(METER_COMPONENT, home, fields, now_ms, tags))
        newest_of_device: dict[str, int] = {}
        for meter, ms in seen.items():
            newest_of_device[meter.device] = max(ms, newest_of_device.get(meter.device, ms))
        for device in sorted(set(newest_of_device) - set(reported_devices)):
            age_s = (now_ms - newest_of_device[device]) / 1000
            lines.append(
                health_line("collector", home, {"reading_age_s": age_s}, now_ms, {"device": device})
            )
        return lines

    def home_line(self, now_ms: int) -> str:
        s = self.settings
        band = s.nominal_voltage_v * s.voltage_tolerance_pct / 100
        fields: dict[str, FieldValue] = {
            "contracted_va": float(s.contracted_va),
            "nominal_voltage_v": float(s.nominal_voltage_v),
            "voltage_low_v": float(s.nominal_voltage_v - band),
            "voltage_high_v": float(s.nominal_voltage_v + band),
            "min_power_factor": float(s.min_power_factor),
            "daily_budget_wh": float(s.daily_budget_kwh * 1000),
            "daily_budget_cost": float(s.daily_budget_cost),
            "currency": s.currency,
            "timezone": s.timezone,
        }
        return format_line(HOME_MEASUREMENT, {"home": s.home}, fields, now_ms)
