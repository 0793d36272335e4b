"""The rollup worker's raw queries stay bounded with many meters: hundreds of meters' minutes
are read in windows no answer of which holds more than `RAW_ANSWER_READINGS` readings, and
the rollups are exactly those of one query per span (baselines carried across windows, a meter
first seen in a later window, counter resets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector import rollup
from collector.rollup import RAW_ANSWER_READINGS, rebuild
from collector.rollup_compute import HOUR_MS, MINUTE_MS
from collector.statedb import StateDB
from energymon.clock import ManualClock
from energymon.influx import InfluxClient, Series
from energymon.schema import Measurement, Reading
from energymon.settings import make_settings

HOME = "home-b"
METERS = [(f"dev-{d:03d}", f"pzem{s}") for d in range(100) for s in (1, 2, 3)]
START_MS = 1_772_000_000_000 - 1_772_000_000_000 % HOUR_MS
MINUTES = 3


class CountingClient(InfluxClient):
    """Remembers how many rows each query answered."""

    def __init__(self, url: str, database: str) -> None:
        super().__init__(url, database)
        self.answers: list[int] = []

    def query(self, q: str, *, database: str | None = "", method: str = "GET") -> list[Series]:
        series = super().query(q, database=database, method=method)
        self.answers.append(sum(len(s.values) for s in series))
        return series

    def query_chunks(self, q: str, *, chunk_size: int = 10_000) -> Iterator[list[Series]]:
        for chunk in super().query_chunks(q, chunk_size=chunk_size):
            self.answers.append(sum(len(s.values) for s in chunk))
            yield chunk


def readings() -> list[Reading]:
    out = []
    for i, (device, sensor) in enumerate(METERS):
        # Every other meter has a reading well before the span: its baseline.
        if i % 2 == 0:
            m = Measurement(230.0, 1.0, 200.0, 1000 + i, 50.0, 0.9, False)
            out.append(Reading(device, sensor, 1, 1, START_MS - 2 * HOUR_MS, m))
        # Every fifth meter starts in the span's second minute, every seventh is reset.
        first = 60 if i % 5 == 0 else 0
        for t in range(first, MINUTES * 60):
            counter = 1000 + i + t // 4 if not (i % 7 == 0 and t >= 100) else (t - 100) // 3
            m = Measurement(
                220.0 + (t + i) % 7, 1.0 + t % 5 / 10, 150.0 + t % 11, counter, 50.0, 0.9, t == 7
            )
            out.append(Reading(device, sensor, 1, 2 + t, START_MS + t * 1000, m))
    return out


def rollups(client: InfluxClient) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for measurement in ("energymon_1m", "energymon_1h", "energymon_day", "energymon_month"):
        q = f"SELECT * FROM {measurement} GROUP BY device, sensor"
        out[measurement] = [{**s.tags, **r} for s in client.query(q) for r in s.records()]
    return out


def rebuild_all(client: InfluxClient, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    settings = make_settings(home=HOME, data_dir=data_dir, influx_db=client.database)
    db = StateDB(data_dir)
    try:
        clock = ManualClock(START_MS + 2 * 86_400_000)
        rebuild(client, settings, START_MS - 3 * HOUR_MS, START_MS + HOUR_MS, db=db, clock=clock)
    finally:
        db.close()
    result = rollups(client)
    for measurement in result:
        client.query(f"DROP MEASUREMENT {measurement}")
    return result


def test_many_meters_are_read_in_bounded_windows_with_the_same_results(
    influx: InfluxClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [r.to_line(HOME) for r in readings()]
    for k in range(0, len(lines), 5000):
        influx.write(lines[k : k + 5000])
    client = CountingClient(influx.url, influx.database)
    try:
        with monkeypatch.context() as m:
            # What the worker did before: every meter's readings of a span in one answer.
            m.setattr(rollup, "raw_window_ms", lambda meter_count: 24 * HOUR_MS)
            whole = rebuild_all(client, tmp_path / "whole")
        assert max(client.answers) > RAW_ANSWER_READINGS
        client.answers.clear()
        windowed = rebuild_all(client, tmp_path / "windowed")
        assert max(client.answers) <= RAW_ANSWER_READINGS
    finally:
        client.close()
    assert len(windowed["energymon_1m"]) == len(METERS) * MINUTES - len(METERS[::5]) + 150
    assert windowed == whole


def test_a_window_holds_whole_minutes_and_at_most_the_cap_at_one_reading_a_second() -> None:
    assert rollup.raw_window_ms(0) == rollup.raw_window_ms(1)
    assert rollup.raw_window_ms(1_000_000) == MINUTE_MS
    for meters in (1, 3, 50, 300):
        window = rollup.raw_window_ms(meters)
        assert window % MINUTE_MS == 0
        assert meters * window // 1000 * rollup.READINGS_PER_METER_S <= RAW_ANSWER_READINGS
