"""One year (or `days`) of 1 Hz readings for a few meters, written fast into an InfluxDB: the
data set the rollup and dashboard benchmarks share.

    from bench.yeardata import write_year
    write_year(client, "bench", days=365, meters=[("mega-01", "mains"), ...])

Lines come from one %-template per meter (the series escaped once), 50,000 to a `/write`. The
profile is deterministic: a daily load curve per meter plus a little noise from the second's
index, a counter in whole Wh that grows with the power, and one counter reset a month on the
second meter, so rollups meet resets. No journal entries: a rebuild reads the data whole.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from energymon.influx import InfluxClient
from energymon.schema import reading_series

BATCH_LINES = 50_000
DAY_S = 86_400
# The second meter's counter is reset at this second of every 30 days.
RESET_EVERY_S = 30 * DAY_S
TEMPLATE = (
    " voltage_v=%r,current_a=%r,power_w=%r,energy_wh=%di,frequency_hz=50.0,"
    "power_factor=0.95,alarm=false,boot=1i,seq=%di %d"
)


def default_meters() -> list[tuple[str, str]]:
    return [("mega-01", "mains"), ("mega-01", "heatpump"), ("mega-01", "kitchen")]


def _load_w(second_of_day: int, meter: int) -> float:
    """A daily curve: low at night, peaks in the morning and evening."""
    hour = second_of_day / 3600
    curve = 0.5 + 0.5 * math.sin((hour - 9) / 24 * 2 * math.pi) ** 2
    return round((150 + 250 * meter) * curve + (second_of_day * 7 + meter * 13) % 40, 1)


def lines(
    home: str, start_ms: int, seconds: int, meters: Sequence[tuple[str, str]]
) -> Iterator[list[str]]:
    """Batches of line protocol for `seconds` seconds from `start_ms` (a whole second)."""
    series = [reading_series(home, device, sensor) for device, sensor in meters]
    energy = [1000.0 * (n + 1) for n in range(len(meters))]
    batch: list[str] = []
    for i in range(seconds):
        t = start_ms + i * 1000
        day_s = (t // 1000) % DAY_S
        voltage = 220.0 + (i % 97) / 10
        for n, prefix in enumerate(series):
            power = _load_w(day_s, n)
            energy[n] += power / 3600
            if n == 1 and i and i % RESET_EVERY_S == 0:
                energy[n] = 0.0
            current = round(power / voltage / 0.95, 3)
            batch.append(prefix + TEMPLATE % (voltage, current, power, int(energy[n]), i + 1, t))
        if len(batch) >= BATCH_LINES:
            yield batch
            batch = []
    if batch:
        yield batch


def write_year(
    client: InfluxClient,
    home: str,
    days: float = 365,
    meters: Sequence[tuple[str, str]] | None = None,
    *,
    end_ms: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int, int]:
    """Write `days` of 1 Hz readings ending at `end_ms` (default: the current hour's start);
    returns (start_ms, end_ms, points written)."""
    chosen = list(meters or default_meters())
    end = end_ms if end_ms is not None else int(time.time() // 3600 * 3600 * 1000)
    seconds = int(days * DAY_S)
    start = end - seconds * 1000
    total = seconds * len(chosen)
    written = 0
    for batch in lines(home, start, seconds, chosen):
        client.write("\n".join(batch).encode())
        written += len(batch)
        if progress is not None:
            progress(written, total)
    return start, end, written


def stderr_progress(label: str) -> Callable[[int, int], None]:
    began = time.monotonic()

    def report(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - began, 1e-9)
        print(
            f"\r{label}: {done:,}/{total:,} points, {rate:,.0f}/s",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )

    return report
