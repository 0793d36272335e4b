"""Shared benchmark data: DAYS of 1 Hz readings of some meters, ending now, written with the
project's own line format (`energymon.schema`), as a home's collector would have stored them.

Power follows a daily cycle with a per-meter phase and a small per-second wobble; the energy
counter integrates it (whole Wh, as the PZEM-004T reports); the meters read at the same
seconds. `write_year` streams day by day, so memory stays flat for a year of data.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence

from energymon.influx import InfluxClient
from energymon.schema import Measurement, reading_line, reading_series

DAY_S = 86_400
LINES_PER_CHUNK = 20_000


def _power_w(meter: int, t_s: int) -> float:
    day = math.sin(2 * math.pi * ((t_s % DAY_S) / DAY_S + meter / 7))
    return round(400.0 + 300.0 * meter + 250.0 * day + (t_s * 7 + meter * 13) % 50, 1)


def _chunks(home: str, start_s: int, seconds: int, meters: Sequence[tuple[str, str]],
            counters: list[float]) -> Iterator[bytes]:  # fmt: skip
    series = [reading_series(home, device, sensor) for device, sensor in meters]
    lines: list[str] = []
    for i in range(seconds):
        t_s = start_s + i
        for n, s in enumerate(series):
            power = _power_w(n, t_s)
            counters[n] += power / 3600
            voltage = 220.0 + (t_s + n) % 90 / 10
            m = Measurement(
                voltage, round(power / voltage / 0.95, 3), power, int(counters[n]), 50.0, 0.95,
                False,
            )  # fmt: skip
            lines.append(reading_line(s, m, 1, t_s - start_s + 1, t_s * 1000))
        if len(lines) >= LINES_PER_CHUNK:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def write_year(
    client: InfluxClient, home: str, days: int, meters: Sequence[tuple[str, str]]
) -> tuple[int, int]:
    """Write `days` days of 1 Hz readings of `meters` (device, sensor) ending now; returns the
    written range [start_ms, end_ms)."""
    end_s = int(time.time())
    start_s = end_s - days * DAY_S
    counters = [1000.0] * len(meters)
    for day in range(days):
        client.write_stream(
            _chunks(home, start_s + day * DAY_S, DAY_S, meters, counters), timeout_s=600.0
        )
        print(f"\rwrote day {day + 1}/{days}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return start_s * 1000, end_s * 1000
