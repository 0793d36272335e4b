"""The price of electricity: dated periods, each a flat price per kWh with optional time-of-use
windows, in the home's local time.

A period applies from its local date on until the next period's date, so a new rate never
rewrites the cost of the past. A window is a local time of day range `start`-`end` (an `end`
at or before `start` runs past midnight) at a price of its own; outside every window the
period's flat price applies. Before the first period's date the first period applies, so data
older than the tariff is priced rather than left without a cost.

The format (JSON in `ENERGYMON_TARIFF`, or JSON/TOML in `ENERGYMON_TARIFF_FILE`):

    {"periods": [
        {"from": "2017-01-01", "price_per_kwh": 1444.70},
        {"from": "2026-01-01", "price_per_kwh": 1500,
         "windows": [{"start": "17:00", "end": "22:00", "price_per_kwh": 2000}]}
    ]}

A bare list of periods is accepted too. Prices are in the currency of `ENERGYMON_CURRENCY`.
"""

from __future__ import annotations

import json
import math
import tomllib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from energymon.errors import ConfigError

# PLN R-1/TR 1,300 VA household rate in rupiah per kWh; docs/configuration.md names its source.
PLN_R1_1300VA_IDR_PER_KWH = 1444.70
# Not the rate's known effective date: early enough that every reading is priced by it.
PLN_R1_FROM = date(2017, 1, 1)


@dataclass(frozen=True, slots=True)
class Window:
    """A local time-of-day range at its own price; `end <= start` runs past midnight."""

    start: time
    end: time
    price_per_kwh: float

    def contains(self, at: time) -> bool:
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end


@dataclass(frozen=True, slots=True)
class Period:
    starts: date
    price_per_kwh: float
    windows: tuple[Window, ...] = ()

    def price_at(self, at: time) -> float:
        for window in self.windows:
            if window.contains(at):
                return window.price_per_kwh
        return self.price_per_kwh


@dataclass(frozen=True, slots=True)
class Tariff:
    """Periods ordered by their start date, at least one."""

    periods: tuple[Period, ...]

    def __post_init__(self) -> None:
        if not self.periods:
            raise ConfigError("a tariff needs at least one period")
        starts = [p.starts for p in self.periods]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ConfigError("tariff periods must have distinct dates in increasing order")

    def period_at(self, day: date) -> Period:
        index = bisect_right([p.starts for p in self.periods], day) - 1
        return self.periods[max(index, 0)]

    def price_at(self, local: datetime) -> float:
        """The price per kWh in force at a local (naive or aware, read as local) instant."""
        return self.period_at(local.date()).price_at(local.time().replace(tzinfo=None))


def pln_r1_default() -> Tariff:
    return Tariff((Period(PLN_R1_FROM, PLN_R1_1300VA_IDR_PER_KWH),))


def parse_tariff(text: str, source: str = "ENERGYMON_TARIFF") -> Tariff:
    """A tariff from JSON text; `ConfigError` naming `source` and the problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc}") from exc
    return tariff_from_data(data, source)


def load_tariff_file(path: Path) -> Tariff:
    """A tariff from a `.toml` file (a `[[periods]]` table per period) or a JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read tariff file {path}: {exc}") from exc
    if path.suffix.lower() == ".toml":
        try:
            return tariff_from_data(tomllib.loads(text), str(path))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_tariff(text, str(path))


def tariff_from_data(data: Any, source: str) -> Tariff:
    periods = data.get("periods") if isinstance(data, dict) else data
    if not isinstance(periods, list) or not periods:
        raise ConfigError(
            f"{source}: expected a non-empty list of periods (or {{'periods': [...]}})"
        )
    parsed = [_period(item, f"{source} period {i + 1}") for i, item in enumerate(periods)]
    try:
        return Tariff(tuple(sorted(parsed, key=lambda p: p.starts)))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _period(item: Any, where: str) -> Period:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object with 'from' and 'price_per_kwh'")
    unknown = set(item) - {"from", "price_per_kwh", "windows", "name"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    starts = item.get("from")
    if isinstance(starts, str):
        try:
            starts = date.fromisoformat(starts)
        except ValueError as exc:
            raise ConfigError(f"{where}: 'from' {starts!r} is not a date YYYY-MM-DD") from exc
    if not isinstance(starts, date) or isinstance(starts, datetime):
        raise ConfigError(f"{where}: 'from' must be a date YYYY-MM-DD")
    windows = item.get("windows", [])
    if not isinstance(windows, list):
        raise ConfigError(f"{where}: 'windows' must be a list")
    return Period(
        starts,
        _price(item.get("price_per_kwh"), where),
        tuple(_window(w, f"{where} window {i + 1}") for i, w in enumerate(windows)),
    )


def _window(item: Any, where: str) -> Window:
    if not isinstance(item, dict) or set(item) - {"start", "end", "price_per_kwh"}:
        raise ConfigError(f"{where}: expected an object with 'start', 'end', 'price_per_kwh'")
    start, end = _clock_time(item.get("start"), where), _clock_time(item.get("end"), where)
    if start == end:
        raise ConfigError(f"{where}: 'start' and 'end' are the same time")
    return Window(start, end, _price(item.get("price_per_kwh"), where))


def _clock_time(value: Any, where: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.second == 0 and parsed.microsecond == 0 and parsed.tzinfo is None:
                return parsed
    # Rollups price whole minutes, so a window must start and end on one.
    raise ConfigError(f"{where}: times must be local HH:MM, got {value!r}")


def _price(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: 'price_per_kwh' must be a number")
    price = float(value)
    if not math.isfinite(price) or price < 0:
        raise ConfigError(f"{where}: 'price_per_kwh' must be a finite number >= 0")
    return price
