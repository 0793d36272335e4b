"""Rollup, home and per-meter health points as the rollup engineer's code writes them
(contract of issue 10), seeded directly beside `known_data`'s readings and consistent with
them: the minute rollup is those readings bucketed, a minute without readings has no point.

Layout: in home-a, `mega-01/mains` is the mains and `mega-01/heatpump` a sub-meter (a part of
the mains); home-b's `pi-01/solar` is unlisted, so an independent circuit. The home's zone is
Asia/Jakarta (UTC+7): local days start at 17:00 UTC.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from energymon.influx import InfluxClient
from tests.grafana.known_data import HEATPUMP, MAINS, METERS, MINUTE_MS, SOLAR, Meter

ZONE = ZoneInfo("Asia/Jakarta")
HOUR_MS = 60 * MINUTE_MS
ROLE = {MAINS.key: "mains", HEATPUMP.key: "submeter", SOLAR.key: "circuit"}
CONTRACTED_VA = {"home-a": 1300, "home-b": 2200}
DAYS = 40
MONTHS = 13
HOURS = 48
OLD_HOUR_DAYS_AGO = 200  # one hourly point far back, for the year-long ranges
# A meter of home-a's layout that never sent a reading: online 0 and a growing age.
NEVER_SEEN = ("home-a", "mega-01", "ev")


def day_energy_wh(meter: Meter, days_ago: int) -> float:
    return {MAINS.key: 5000.0 + 100 * days_ago, HEATPUMP.key: 2000.0}.get(
        meter.key, 1000.0 + days_ago
    )


def day_cost(meter: Meter, days_ago: int) -> float:
    # A tariff change ten days ago: the days before keep the old rate.
    rate = 1444.70 if days_ago >= 10 else 1699.53
    return round(day_energy_wh(meter, days_ago) / 1000 * rate, 2)


def month_energy_wh(meter: Meter, months_ago: int) -> float:
    return {MAINS.key: 150_000.0 + 1000 * months_ago, HEATPUMP.key: 60_000.0}.get(
        meter.key, 30_000.0 + months_ago
    )


def month_cost(meter: Meter, months_ago: int) -> float:
    return round(month_energy_wh(meter, months_ago) / 1000 * 1444.70, 2)


@dataclass(frozen=True)
class Calendar:
    """Local midnights (as UTC epoch milliseconds) of the days and months seeded."""

    days_ms: tuple[int, ...]  # index = days ago
    months_ms: tuple[int, ...]  # index = months ago


def calendar(now_ms: int) -> Calendar:
    local = datetime.fromtimestamp(now_ms / 1000, ZONE)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    days = tuple(int((midnight - timedelta(days=d)).timestamp() * 1000) for d in range(DAYS))
    months = []
    year, month = local.year, local.month
    for _ in range(MONTHS):
        months.append(int(datetime(year, month, 1, tzinfo=ZONE).timestamp() * 1000))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return Calendar(days, tuple(months))


def _tags(meter: Meter) -> str:
    home, device, sensor = meter.key
    return f"home={home},device={device},sensor={sensor},role={ROLE[meter.key]}"


def _bucket_fields(meter: Meter, energy_wh: float, samples: int, alarms: int) -> str:
    va = round(meter.voltage_v * meter.current_a, 6)
    return ",".join(
        [
            *(f"voltage_v_{s}={meter.voltage_v}" for s in ("mean", "min", "max")),
            *(f"current_a_{s}={meter.current_a}" for s in ("mean", "min", "max")),
            *(f"power_w_{s}={meter.power_w}" for s in ("mean", "min", "max")),
            *(f"apparent_power_va_{s}={va}" for s in ("mean", "min", "max")),
            f"power_factor_mean={meter.power_factor}",
            f"power_factor_min={meter.power_factor}",
            f"frequency_hz_mean={meter.frequency_hz}",
            f"energy_wh={float(energy_wh)}",
            f"cost={round(energy_wh / 1000 * 1699.53, 6)}",
            f"samples={samples}i",
            f"alarm_readings={alarms}i",
        ]
    )


def minute_consumption(meter: Meter) -> dict[int, float]:
    """Minute k -> energy of its reading: counter increase since the previous reading, or the
    counter itself after a reset (never negative); nothing for a minute without a reading."""
    minutes = sorted(meter.energy, reverse=True)
    out = {minutes[0]: 0.0}
    for before, k in itertools.pairwise(minutes):
        a, b = meter.energy[before], meter.energy[k]
        out[k] = float(b - a if b >= a else b)
    return out


def _minute_lines(now_ms: int) -> list[str]:
    lines = []
    for meter in METERS:
        for k, energy in minute_consumption(meter).items():
            t = (now_ms - k * MINUTE_MS) // MINUTE_MS * MINUTE_MS
            alarm = int(meter is HEATPUMP and k <= 3)
            fields = _bucket_fields(meter, energy, 1, alarm)
            lines.append(f"energymon_1m,{_tags(meter)} {fields} {t}")
    return lines


def _hour_lines(now_ms: int) -> list[str]:
    lines = []
    top = now_ms // HOUR_MS * HOUR_MS
    hours = [top - h * HOUR_MS for h in range(HOURS)]
    hours.append(top - OLD_HOUR_DAYS_AGO * 24 * HOUR_MS)
    for meter in METERS:
        for t in hours:
            fields = _bucket_fields(meter, meter.wh_per_minute * 60.0, 60, 0)
            lines.append(f"energymon_1h,{_tags(meter)} {fields} {t}")
    return lines


def _calendar_lines(cal: Calendar) -> list[str]:
    lines = []
    for meter in METERS:
        for d, t in enumerate(cal.days_ms):
            fields = (
                f"energy_wh={day_energy_wh(meter, d)},cost={day_cost(meter, d)},"
                f"samples=1440i,voltage_v_min={meter.voltage_v - 5},"
                f"voltage_v_max={meter.voltage_v + 5},power_w_max={meter.power_w * 2},"
                f"apparent_power_va_max={meter.power_w * 2.2}"
            )
            lines.append(f"energymon_day,{_tags(meter)} {fields} {t}")
        for m, t in enumerate(cal.months_ms):
            fields = f"energy_wh={month_energy_wh(meter, m)},cost={month_cost(meter, m)}"
            fields += ",samples=43200i"
            lines.append(f"energymon_month,{_tags(meter)} {fields} {t}")
    return lines


def _home_and_meter_health_lines(now_ms: int) -> list[str]:
    lines = []
    for k in range(30, 0, -1):
        t = now_ms - k * MINUTE_MS
        for home, va in CONTRACTED_VA.items():
            lines.append(
                f"energymon_home,home={home} contracted_va={va}.0,nominal_voltage_v=220.0,"
                f"voltage_low_v=198.0,voltage_high_v=242.0,min_power_factor=0.85,"
                f'daily_budget_wh=0.0,daily_budget_cost=0.0,currency="IDR",'
                f'timezone="Asia/Jakarta" {t}'
            )
        ages = {
            MAINS.key: (2.0, 1),
            HEATPUMP.key: (2.0, 1),
            SOLAR.key: (2400.0 + 60 * (30 - k), 0),
            NEVER_SEEN: (600.0 + 60 * (30 - k), 0),
        }
        for (home, device, sensor), (age, online) in ages.items():
            role = (
                "circuit" if (home, device, sensor) == NEVER_SEEN else ROLE[(home, device, sensor)]
            )
            lines.append(
                f"energymon_health,home={home},component=meter,device={device},sensor={sensor},"
                f"role={role} reading_age_s={age},online={online}i {t}"
            )
    return lines


def write_rollup_data(client: InfluxClient, now_ms: int) -> Calendar:
    cal = calendar(now_ms)
    client.write(
        _minute_lines(now_ms)
        + _hour_lines(now_ms)
        + _calendar_lines(cal)
        + _home_and_meter_health_lines(now_ms)
    )
    return cal
