"""The rollups' arithmetic without a database: counter energy (properties), buckets, prices,
and calendar days and months in zones with and without daylight saving time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.rollup_compute import (
    HOUR_MS,
    MINUTE_MS,
    MinuteFolder,
    RawReading,
    consumption_wh,
    energies_wh,
    local_day_start,
    local_month_start,
    merge,
    minute_buckets,
    minute_price,
    next_local_day,
    next_local_month,
)
from energymon.layout import Meter
from energymon.tariff import Period, Tariff, Window, parse_tariff

counters = st.lists(st.integers(min_value=0, max_value=9_999_990), min_size=1, max_size=60)
baselines = st.none() | st.integers(min_value=0, max_value=9_999_990)


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


@given(baselines, counters)
def test_energy_is_never_negative(baseline: int | None, values: list[int]) -> None:
    assert all(e >= 0 for e in energies_wh(baseline, values))


@given(baselines, counters, st.integers(min_value=0, max_value=60))
def test_energy_adds_up_across_buckets(baseline: int | None, values: list[int], cut: int) -> None:
    """Split anywhere, the part after the cut counted from the reading before it: the same."""
    cut = min(cut, len(values))
    whole = sum(energies_wh(baseline, values))
    head = sum(energies_wh(baseline, values[:cut]))
    tail_base = values[cut - 1] if cut else baseline
    assert head + sum(energies_wh(tail_base, values[cut:])) == whole


@given(st.integers(min_value=0, max_value=1000), st.lists(st.integers(0, 500), max_size=60))
def test_without_resets_energy_is_the_counter_delta(start: int, steps: list[int]) -> None:
    values = [start]
    for step in steps:
        values.append(values[-1] + step)
    assert sum(energies_wh(values[0], values[1:])) == values[-1] - values[0]


def test_a_reset_counts_the_new_counter_value() -> None:
    assert consumption_wh(5000, 7) == 7
    assert consumption_wh(None, 5000) == 0
    assert energies_wh(100, [110, 3, 8]) == [10, 3, 5]


def _r(time_ms: int, counter: int, v: float = 230.0, a: float = 2.0) -> RawReading:
    return RawReading(time_ms, v, a, v * a * 0.9, counter, 50.0, 0.9, False)


def test_minute_buckets_and_their_hour() -> None:
    t = ms("2026-03-10T10:00:00")
    rs = [_r(t + 10_000, 105, 230.0, 1.0), _r(t + 50_000, 107, 240.0, 2.0), _r(t + 61_000, 110)]
    buckets = minute_buckets(rs, 100, lambda start: 2000.0 if start == t else 1000.0)
    assert [b.start_ms for b in buckets] == [t, t + MINUTE_MS]
    first = buckets[0].fields()
    assert first["energy_wh"] == 7.0 and first["cost"] == pytest.approx(14.0)
    assert first["apparent_power_va_min"] == 230.0 and first["apparent_power_va_max"] == 480.0
    assert first["voltage_v_mean"] == 235.0 and first["samples"] == 2
    hour = merge(buckets, t).fields()
    assert hour["energy_wh"] == 10.0 and hour["cost"] == pytest.approx(17.0)
    assert hour["samples"] == 3 and hour["voltage_v_max"] == 240.0


meter_readings = st.lists(
    st.tuples(st.integers(0, 3 * MINUTE_MS), st.integers(0, 50)), min_size=1, max_size=40
).map(lambda rows: sorted({t: c for t, c in rows}.items()))


@given(
    st.lists(meter_readings, min_size=1, max_size=3),
    st.lists(st.integers(1, 7), min_size=1, max_size=10),
    st.booleans(),
)
def test_folding_pieces_gives_the_buckets_of_the_whole(
    per_meter: list[list[tuple[int, int]]], sizes: list[int], interleave: bool
) -> None:
    """However a stream is cut into pieces, and even when meters' pieces alternate, the last
    bucket emitted for each meter's minute is that of all its readings at once."""
    meters = [Meter(f"d{i}", "pzem1") for i in range(len(per_meter))]
    readings = {m: [_r(t, c) for t, c in rows] for m, rows in zip(meters, per_meter, strict=True)}
    pieces: list[list[tuple[Meter, list[RawReading]]]] = []
    for m in meters:
        rs, k, cut = readings[m], 0, 0
        pieces.append([])
        while cut < len(rs):
            pieces[-1].append((m, rs[cut : cut + sizes[k % len(sizes)]]))
            cut, k = cut + sizes[k % len(sizes)], k + 1
    if interleave:
        stream = [p for group in zip(*pieces, strict=False) for p in group]
        stream += [p for group in pieces for p in group[min(map(len, pieces)) :]]
    else:
        stream = [p for group in pieces for p in group]
    folder = MinuteFolder(lambda m: 7.0, lambda start: 1000.0)
    emitted = {}
    for meter, piece in stream:
        emitted.update({(m, b.start_ms): b for m, b in folder.add(meter, piece)})
    emitted.update({(m, b.start_ms): b for m, b in folder.finish()})
    expected = {
        (m, b.start_ms): b for m in meters for b in minute_buckets(readings[m], 7.0, lambda s: 1e3)
    }
    assert emitted.keys() == expected.keys()
    for key, bucket in expected.items():
        assert emitted[key].fields() == pytest.approx(bucket.fields())
    assert folder.readings == sum(map(len, readings.values()))
    assert folder.newest_ms == {m: rs[-1].time_ms for m, rs in readings.items()}


def test_time_of_use_price_in_local_time() -> None:
    tariff = Tariff(
        (
            Period(date(2026, 1, 1), 1000.0, (Window(time(22, 0), time(6, 0), 500.0),)),
            Period(date(2026, 6, 1), 1500.0),
        )
    )
    price = minute_price(tariff, ZoneInfo("Asia/Jakarta"))
    assert price(ms("2026-03-10T15:30:00")) == 500.0  # 22:30 local
    # The window ends at 06:00 local (23:00 UTC), exclusive.
    assert price(ms("2026-03-10T23:00:00") - MINUTE_MS) == 500.0
    assert price(ms("2026-03-10T23:00:00")) == 1000.0
    # The new period starts at local midnight of June 1st: 17:00 UTC on May 31st.
    assert price(ms("2026-05-31T16:59:00")) == 500.0  # 23:59 local, in the night window
    assert price(ms("2026-05-31T17:00:00")) == 1500.0
    # Before the first period, the first period applies.
    assert price(ms("2020-01-01T05:00:00")) == 1000.0


def test_pln_default_and_parsing_errors() -> None:
    tariff = parse_tariff('{"periods": [{"from": "2017-01-01", "price_per_kwh": 1444.70}]}')
    assert tariff.price_at(datetime(2026, 1, 1, 12, 0)) == 1444.70


def test_jakarta_days_start_at_17_utc() -> None:
    zone = ZoneInfo("Asia/Jakarta")
    assert local_day_start(ms("2026-03-10T16:59:59"), zone) == ms("2026-03-09T17:00:00")
    assert local_day_start(ms("2026-03-10T17:00:00"), zone) == ms("2026-03-10T17:00:00")
    assert local_month_start(ms("2026-02-28T17:00:00"), zone) == ms("2026-02-28T17:00:00")
    assert next_local_month(ms("2026-11-30T17:00:00"), zone) == ms("2026-12-31T17:00:00")


def test_daylight_saving_days_are_23_and_25_hours() -> None:
    zone = ZoneInfo("Europe/Berlin")
    spring = local_day_start(ms("2026-03-29T12:00:00"), zone)
    assert spring == ms("2026-03-28T23:00:00")
    assert next_local_day(spring, zone) - spring == 23 * HOUR_MS
    autumn = local_day_start(ms("2026-10-25T12:00:00"), zone)
    assert next_local_day(autumn, zone) - autumn == 25 * HOUR_MS
    # March has one hour fewer, October one more.
    march = local_month_start(ms("2026-03-15T00:00:00"), zone)
    assert next_local_month(march, zone) - march == (31 * 24 - 1) * HOUR_MS
    october = local_month_start(ms("2026-10-15T00:00:00"), zone)
    assert next_local_month(october, zone) - october == (31 * 24 + 1) * HOUR_MS


def test_a_day_starting_off_the_hour() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    assert local_day_start(ms("2026-03-10T19:00:00"), zone) == ms("2026-03-10T18:30:00")
