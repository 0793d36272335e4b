"""The arithmetic of the rollups, without InfluxDB: buckets of readings, energy from the meter's
counter, cost from the tariff, calendar days and months in the home's time zone.

Energy comes from the PZEM's counter (Wh), never from integrating power. A reading's
consumption is its counter minus the previous reading's, whenever that was, so across a gap the
whole gap's consumption lands in the bucket of the first reading after it. A counter lower than
the previous one means the meter was reset: the new counter value is what was used since the
reset. The very first reading of a meter has no previous one and counts nothing. So energy is
never negative, adds up across buckets, and without resets equals the counter's difference.

A bucket's cost is its energy priced by the tariff in force at the bucket's local start; the
tariff changes price on whole local minutes, so a minute has one price and the cost of an
hour, day or month is the sum of its minutes'.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from energymon.layout import Meter
from energymon.tariff import Tariff

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class RawReading:
    time_ms: int
    voltage_v: float
    current_a: float
    power_w: float
    energy_wh: float
    frequency_hz: float
    power_factor: float
    alarm: bool


@dataclass(frozen=True, slots=True)
class Extremes:
    """Sum, min and max of one quantity over a bucket's readings."""

    total: float
    low: float
    high: float

    @staticmethod
    def of(values: Sequence[float]) -> Extremes:
        return Extremes(math.fsum(values), min(values), max(values))

    def merged(self, other: Extremes) -> Extremes:
        return Extremes(
            self.total + other.total, min(self.low, other.low), max(self.high, other.high)
        )


@dataclass(frozen=True, slots=True)
class Bucket:
    """What a bucket's readings add up to; `merged` joins two buckets of the same meter."""

    start_ms: int
    samples: int
    voltage_v: Extremes
    current_a: Extremes
    power_w: Extremes
    apparent_power_va: Extremes
    power_factor: Extremes
    frequency_hz_total: float
    energy_wh: float
    cost: float
    alarm_readings: int
    newest_ms: int

    def merged(self, other: Bucket, start_ms: int) -> Bucket:
        return Bucket(
            start_ms,
            self.samples + other.samples,
            self.voltage_v.merged(other.voltage_v),
            self.current_a.merged(other.current_a),
            self.power_w.merged(other.power_w),
            self.apparent_power_va.merged(other.apparent_power_va),
            self.power_factor.merged(other.power_factor),
            self.frequency_hz_total + other.frequency_hz_total,
            self.energy_wh + other.energy_wh,
            self.cost + other.cost,
            self.alarm_readings + other.alarm_readings,
            max(self.newest_ms, other.newest_ms),
        )

    def fields(self) -> dict[str, float | int]:
        """The fields of an `energymon_1m` / `energymon_1h` point (docs/rollups.md)."""
        n = self.samples
        return {
            "voltage_v_mean": self.voltage_v.total / n,
            "voltage_v_min": self.voltage_v.low,
            "voltage_v_max": self.voltage_v.high,
            "current_a_mean": self.current_a.total / n,
            "current_a_min": self.current_a.low,
            "current_a_max": self.current_a.high,
            "power_w_mean": self.power_w.total / n,
            "power_w_min": self.power_w.low,
            "power_w_max": self.power_w.high,
            "apparent_power_va_mean": self.apparent_power_va.total / n,
            "apparent_power_va_min": self.apparent_power_va.low,
            "apparent_power_va_max": self.apparent_power_va.high,
            "power_factor_mean": self.power_factor.total / n,
            "power_factor_min": self.power_factor.low,
            "frequency_hz_mean": self.frequency_hz_total / n,
            "energy_wh": float(self.energy_wh),
            "cost": float(self.cost),
            "samples": n,
            "alarm_readings": self.alarm_readings,
        }


def consumption_wh(previous_wh: float | None, counter_wh: float) -> float:
    """What a reading adds: never negative; after a reset, the new counter value."""
    if previous_wh is None:
        return 0.0
    return counter_wh - previous_wh if counter_wh >= previous_wh else counter_wh


def energies_wh(baseline_wh: float | None, counters_wh: Iterable[float]) -> list[float]:
    """Each reading's consumption, chained from `baseline_wh` (the reading before them)."""
    out: list[float] = []
    previous = baseline_wh
    for counter in counters_wh:
        out.append(consumption_wh(previous, counter))
        previous = counter
    return out


def minute_buckets(
    readings: Sequence[RawReading],
    baseline_wh: float | None,
    price_at: Callable[[int], float],
) -> list[Bucket]:
    """One meter's readings (sorted by time) in minute buckets; `baseline_wh` is the counter of
    its reading before the first of them (None: there is none); `price_at(minute_start_ms)`
    is the price per kWh in force then."""
    energies = energies_wh(baseline_wh, (r.energy_wh for r in readings))
    groups: dict[int, list[int]] = {}
    for index, r in enumerate(readings):
        groups.setdefault(r.time_ms - r.time_ms % MINUTE_MS, []).append(index)
    return [
        _bucket(start, [readings[i] for i in idx], [energies[i] for i in idx], price_at(start))
        for start, idx in sorted(groups.items())
    ]


class MinuteFolder:
    """Folds meters' readings, streamed in pieces of any size, into minute buckets, holding no
    more than the current minute of the meter being read. A meter's pieces come oldest first;
    its minute still being read is held back until the next piece shows it complete. Should a
    meter's pieces not be consecutive (a server that interleaves series), the minute emitted at
    the switch is emitted again, merged with the rest, when the meter comes back."""

    def __init__(
        self, baseline_of: Callable[[Meter], float | None], price_at: Callable[[int], float]
    ) -> None:
        self._baseline_of = baseline_of
        self._price_at = price_at
        self._counters: dict[Meter, float | None] = {}
        self._held: dict[Meter, list[RawReading]] = {}
        self._last: dict[Meter, Bucket] = {}
        self._open: Meter | None = None
        self.readings = 0
        self.newest_ms: dict[Meter, int] = {}

    def add(self, meter: Meter, readings: Sequence[RawReading]) -> list[tuple[Meter, Bucket]]:
        """The buckets this piece completes."""
        out = self._close(self._open) if self._open not in (None, meter) else []
        self._open = meter
        self.readings += len(readings)
        if meter not in self._counters:
            self._counters[meter] = self._baseline_of(meter)
        held = self._held.pop(meter, [])
        held.extend(readings)
        if not held:
            return out
        cut = bisect_left(held, held[-1].time_ms // MINUTE_MS * MINUTE_MS, key=_time_ms)
        self._held[meter] = held[cut:]
        return out + self._fold(meter, held[:cut])

    def finish(self) -> list[tuple[Meter, Bucket]]:
        """The buckets of the minutes still held."""
        out: list[tuple[Meter, Bucket]] = []
        for meter in list(self._held):
            out += self._close(meter)
        self._open = None
        return out

    def _close(self, meter: Meter | None) -> list[tuple[Meter, Bucket]]:
        return [] if meter is None else self._fold(meter, self._held.pop(meter, []))

    def _fold(self, meter: Meter, readings: Sequence[RawReading]) -> list[tuple[Meter, Bucket]]:
        if not readings:
            return []
        buckets = minute_buckets(readings, self._counters[meter], self._price_at)
        self._counters[meter] = readings[-1].energy_wh
        self.newest_ms[meter] = max(self.newest_ms.get(meter, 0), readings[-1].time_ms)
        last = self._last.get(meter)
        if last is not None and last.start_ms == buckets[0].start_ms:
            buckets[0] = last.merged(buckets[0], last.start_ms)
        self._last[meter] = buckets[-1]
        return [(meter, b) for b in buckets]


def _time_ms(reading: RawReading) -> int:
    return reading.time_ms


def _bucket(
    start_ms: int, rs: Sequence[RawReading], energies: Sequence[float], price: float
) -> Bucket:
    energy_wh = math.fsum(energies)
    return Bucket(
        start_ms,
        len(rs),
        Extremes.of([r.voltage_v for r in rs]),
        Extremes.of([r.current_a for r in rs]),
        Extremes.of([r.power_w for r in rs]),
        Extremes.of([r.voltage_v * r.current_a for r in rs]),
        Extremes.of([r.power_factor for r in rs]),
        math.fsum(r.frequency_hz for r in rs),
        energy_wh,
        energy_wh / 1000 * price,
        sum(1 for r in rs if r.alarm),
        max(r.time_ms for r in rs),
    )


def merge(buckets: Sequence[Bucket], start_ms: int) -> Bucket:
    """Buckets of one meter joined into the larger bucket starting at `start_ms`."""
    merged = replace(buckets[0], start_ms=start_ms)
    for b in buckets[1:]:
        merged = merged.merged(b, start_ms)
    return merged


def bucket_from_fields(start_ms: int, f: dict[str, float | int]) -> Bucket:
    """A stored `energymon_1m` point back as a bucket, to be merged into its hour."""
    n = int(f["samples"])

    def ext(name: str, low: str, high: str | None) -> Extremes:
        return Extremes(
            float(f[name]) * n, float(f[low]), float(f[high]) if high else float(f[low])
        )

    return Bucket(
        start_ms,
        n,
        ext("voltage_v_mean", "voltage_v_min", "voltage_v_max"),
        ext("current_a_mean", "current_a_min", "current_a_max"),
        ext("power_w_mean", "power_w_min", "power_w_max"),
        ext("apparent_power_va_mean", "apparent_power_va_min", "apparent_power_va_max"),
        ext("power_factor_mean", "power_factor_min", None),
        float(f["frequency_hz_mean"]) * n,
        float(f["energy_wh"]),
        float(f["cost"]),
        int(f["alarm_readings"]),
        start_ms,
    )


def minute_price(tariff: Tariff, zone: ZoneInfo) -> Callable[[int], float]:
    """`price_at(minute_start_ms)` for `minute_buckets`."""

    def price_at(start_ms: int) -> float:
        return tariff.price_at(datetime.fromtimestamp(start_ms / 1000, zone))

    return price_at


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def local_day_start(time_ms: int, zone: ZoneInfo) -> int:
    """The local midnight (as a UTC instant) starting the day that holds `time_ms`."""
    local = datetime.fromtimestamp(time_ms / 1000, zone)
    return _ms(datetime(local.year, local.month, local.day, tzinfo=zone))


def next_local_day(day_start_ms: int, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(day_start_ms / 1000, zone).date() + timedelta(days=1)
    return _ms(datetime(local.year, local.month, local.day, tzinfo=zone))


def local_month_start(time_ms: int, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(time_ms / 1000, zone)
    return _ms(datetime(local.year, local.month, 1, tzinfo=zone))


def next_local_month(month_start_ms: int, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(month_start_ms / 1000, zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return _ms(datetime(year, month, 1, tzinfo=zone))


def floor_ms(time_ms: int, size_ms: int) -> int:
    return time_ms - time_ms % size_ms
