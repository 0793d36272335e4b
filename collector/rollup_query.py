"""The rollups' side of the local InfluxDB: reading raw points and lower rollups, and the lines
of the rollup points (the schema is in docs/rollups.md; every point carries `home`, `device`,
`sensor` and `role`, its time is the bucket's start)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.rollup_compute import Bucket, RawReading, bucket_from_fields, merge
from energymon.influx import InfluxClient, quote_string
from energymon.layout import Layout, Meter
from energymon.lineproto import FieldValue, format_line
from energymon.schema import MEASUREMENT

MINUTE = "energymon_1m"
HOUR = "energymon_1h"
DAY = "energymon_day"
MONTH = "energymon_month"

# Rows of one streamed piece of an hour's minutes, and of a window's raw readings.
MINUTES_CHUNK = 5_000
READINGS_CHUNK = 1_000
# A baseline or a next reading is looked for this far first, then without bound.
NEAR_MS = 7 * 86_400_000

_RAW_FIELDS = "voltage_v, current_a, power_w, energy_wh, frequency_hz, power_factor, alarm"
_MINUTE_FIELDS = (
    "voltage_v_mean", "voltage_v_min", "voltage_v_max", "current_a_mean", "current_a_min",
    "current_a_max", "power_w_mean", "power_w_min", "power_w_max", "apparent_power_va_mean",
    "apparent_power_va_min", "apparent_power_va_max", "power_factor_mean", "power_factor_min",
    "frequency_hz_mean", "energy_wh", "cost", "samples", "alarm_readings",
)  # fmt: skip
# A calendar bucket's fields, each an aggregate of the same field one level below.
_CALENDAR_FIELDS = (
    ("energy_wh", "sum"),
    ("cost", "sum"),
    ("samples", "sum"),
    ("voltage_v_min", "min"),
    ("voltage_v_max", "max"),
    ("power_w_max", "max"),
    ("apparent_power_va_max", "max"),
)


def _meter(tags: Mapping[str, str]) -> Meter:
    return Meter(tags["device"], tags["sensor"])


@dataclass(frozen=True, slots=True)
class RollupSource:
    """Reads what the rollups are made of, for one home."""

    influx: InfluxClient
    home: str

    def _where(self, lo_ms: int | None, hi_ms: int | None) -> str:
        parts = [f"home = {quote_string(self.home)}"]
        if lo_ms is not None:
            parts.append(f"time >= {lo_ms}ms")
        if hi_ms is not None:
            parts.append(f"time < {hi_ms}ms")
        return " AND ".join(parts)

    def meter_count(self) -> int:
        """How many meters the home has ever stored a reading of (its raw series)."""
        q = f"SHOW SERIES FROM {MEASUREMENT} WHERE home = {quote_string(self.home)}"
        return sum(len(s.values) for s in self.influx.query(q))

    def reading_pieces(self, lo_ms: int, hi_ms: int) -> Iterator[tuple[Meter, list[RawReading]]]:
        """Every meter's readings in [lo_ms, hi_ms) as they stream in, in pieces of at most
        `READINGS_CHUNK`, each meter's oldest first, so that memory does not grow with the
        number of meters or their rate."""
        q = (
            f"SELECT {_RAW_FIELDS} FROM {MEASUREMENT} WHERE {self._where(lo_ms, hi_ms)} "
            "GROUP BY device, sensor"
        )
        for chunk in self.influx.query_chunks(q, chunk_size=READINGS_CHUNK):
            for series in chunk:
                # InfluxQL's JSON prints the float 230.0 as 230: a minimum or maximum taken from
                # an int would be written as an integer field, and the next float refused.
                rows = [
                    RawReading(
                        int(t), float(v), float(a), float(p), float(e), float(f), float(pf), al
                    )
                    for t, v, a, p, e, f, pf, al in series.values
                    if None not in (t, v, a, p, e, f, pf, al)
                ]
                if rows:
                    yield _meter(series.tags), rows

    def _one_per_meter(
        self, select: str, where: str, meters: Sequence[Meter] = ()
    ) -> dict[Meter, Any]:
        if meters:
            where += (
                " AND ("
                + " OR ".join(
                    f"(device = {quote_string(m.device)} AND sensor = {quote_string(m.sensor)})"
                    for m in meters
                )
                + ")"
            )
        q = f"SELECT {select} FROM {MEASUREMENT} WHERE {where} GROUP BY device, sensor"
        return {
            _meter(s.tags): (s.values[0][0], s.values[0][1])
            for s in self.influx.query(q)
            if s.values and s.values[0][1] is not None
        }

    def baselines_near(self, before_ms: int) -> dict[Meter, float]:
        """The counter of the newest reading before `before_ms` of every meter that has one
        not long before it (the others need `baselines`)."""
        found = self._one_per_meter("last(energy_wh)", self._where(before_ms - NEAR_MS, before_ms))
        return {m: float(v) for m, (_, v) in found.items()}

    def first_reading(self, lo_ms: int, hi_ms: int) -> int | None:
        """The time of the oldest reading of any meter in [lo_ms, hi_ms)."""
        q = f"SELECT first(energy_wh) FROM {MEASUREMENT} WHERE {self._where(lo_ms, hi_ms)}"
        return next((int(row[0]) for s in self.influx.query(q) for row in s.values), None)

    def baseline(self, before_ms: int, meter: Meter) -> float | None:
        """The counter of one meter's newest reading before `before_ms`, however old."""
        found = self._one_per_meter("last(energy_wh)", self._where(None, before_ms), [meter])
        return float(found[meter][1]) if meter in found else None

    def next_readings(self, from_ms: int, meters: Sequence[Meter], now_ms: int) -> dict[Meter, int]:
        """The time of each meter's oldest reading at or after `from_ms`."""
        if from_ms > now_ms or not meters:
            return {}
        found = self._one_per_meter(
            "first(energy_wh)", self._where(from_ms, from_ms + NEAR_MS), meters
        )
        missing = [m for m in meters if m not in found]
        if missing:
            found.update(
                self._one_per_meter("first(energy_wh)", self._where(from_ms, None), missing)
            )
        return {m: int(t) for m, (t, _) in found.items()}

    def hour(self, lo_ms: int, hi_ms: int) -> dict[Meter, Bucket]:
        """Each meter's stored `energymon_1m` buckets in [lo_ms, hi_ms) merged into one starting
        at `lo_ms`, streamed so that memory does not grow with the number of meters."""
        q = (
            f"SELECT {', '.join(_MINUTE_FIELDS)} FROM {MINUTE} WHERE {self._where(lo_ms, hi_ms)} "
            "GROUP BY device, sensor"
        )
        out: dict[Meter, Bucket] = {}
        for chunk in self.influx.query_chunks(q, chunk_size=MINUTES_CHUNK):
            for series in chunk:
                meter = _meter(series.tags)
                for row in series.values:
                    if None in row:
                        continue
                    b = bucket_from_fields(
                        int(row[0]), dict(zip(_MINUTE_FIELDS, row[1:], strict=True))
                    )
                    held = out.get(meter)
                    out[meter] = merge([b], lo_ms) if held is None else held.merged(b, lo_ms)
        return out

    def calendar(self, below: str, lo_ms: int, hi_ms: int) -> dict[Meter, dict[str, FieldValue]]:
        """The fields of a day (from `energymon_1m`) or a month (from `energymon_day`)."""
        select = ", ".join(f"{agg}({name}) AS {name}" for name, agg in _CALENDAR_FIELDS)
        where = self._where(lo_ms, hi_ms)
        q = f"SELECT {select} FROM {below} WHERE {where} GROUP BY device, sensor"
        out: dict[Meter, dict[str, FieldValue]] = {}
        for series in self.influx.query(q):
            for row in series.values:
                values = dict(zip((n for n, _ in _CALENDAR_FIELDS), row[1:], strict=True))
                if values["samples"]:
                    out[_meter(series.tags)] = {
                        name: int(v) if name == "samples" else float(v)
                        for name, v in values.items()
                    }
        return out


def point_lines(
    measurement: str,
    home: str,
    layout: Layout,
    start_ms: int,
    fields_of: Mapping[Meter, Mapping[str, FieldValue]],
) -> list[str]:
    """One rollup point per meter, at `start_ms`."""
    return [
        format_line(
            measurement,
            {
                "home": home,
                "device": m.device,
                "sensor": m.sensor,
                "role": layout.role(m.device, m.sensor),
            },
            fields,
            start_ms,
        )
        for m, fields in sorted(fields_of.items())
    ]


def bucket_lines(
    measurement: str, home: str, layout: Layout, buckets: Mapping[Meter, Sequence[Bucket]]
) -> list[str]:
    """The points of minute or hour buckets, one per meter and bucket."""
    lines: list[str] = []
    for m, bs in sorted(buckets.items()):
        tags = {
            "home": home,
            "device": m.device,
            "sensor": m.sensor,
            "role": layout.role(m.device, m.sensor),
        }
        lines += [format_line(measurement, tags, b.fields(), b.start_ms) for b in bs]
    return lines
