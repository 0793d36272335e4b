"""The rollup worker's work stays bounded with many meters: hundreds of meters' readings are
streamed in pieces of at most `READINGS_CHUNK`, a step reads back about `step_readings` and
leaves the rest of a span for the next step, and the rollups are exactly those of one window
per span (baselines carried across windows and steps, a meter first seen in a later window,
counter resets)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collector import rollup
from collector.rollup import RollupConfig, RollupStep
from collector.rollup_compute import HOUR_MS
from collector.rollup_query import READINGS_CHUNK
from collector.rollup_rebuild import rebuild
from collector.statedb import StateDB
from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from energymon.influx_answers import Series
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


def rebuild_all(
    client: InfluxClient, data_dir: Path, step_readings: int
) -> tuple[dict[str, list[dict[str, Any]]], list[RollupStep]]:
    settings = make_settings(home=HOME, data_dir=data_dir, influx_db=client.database)
    config = RollupConfig.from_settings(settings)
    db = StateDB(data_dir)
    steps: list[RollupStep] = []
    try:
        clock = ManualClock(START_MS + 2 * 86_400_000)
        worker = rollup.RollupWorker(
            db, client, replace(config, step_readings=step_readings), clock, follow_journal=False
        )
        worker.mark(START_MS - 3 * HOUR_MS, START_MS + HOUR_MS - 1, since_ms=clock.now_ms())
        while (step := worker.run_once()).more_work:
            steps.append(step)
        steps.append(step)
    finally:
        db.close()
    result = rollups(client)
    for measurement in result:
        client.query(f"DROP MEASUREMENT {measurement}")
    return result, steps


def write_readings(influx: InfluxClient) -> list[str]:
    lines = [r.to_line(HOME) for r in readings()]
    for k in range(0, len(lines), 5000):
        influx.write(lines[k : k + 5000])
    return lines


def test_many_meters_are_read_in_bounded_steps_with_the_same_results(
    influx: InfluxClient, tmp_path: Path
) -> None:
    lines = write_readings(influx)
    client = CountingClient(influx.url, influx.database)
    try:
        whole, steps = rebuild_all(client, tmp_path / "whole", 10 * len(lines))
        assert max(client.answers) <= READINGS_CHUNK < len(lines)
        assert [s.readings for s in steps if s.readings] == [len(lines)]
        client.answers.clear()
        bounded, steps = rebuild_all(client, tmp_path / "bounded", 20_000)
        assert max(client.answers) <= READINGS_CHUNK
    finally:
        client.close()
    # A step ends once it has read its readings, in windows of whole minutes: it may read one
    # minute of every meter (here 60 readings each) beyond them.
    read = [s.readings for s in steps if s.readings]
    assert len(read) > 1 and sum(read) == len(lines)
    assert max(read) <= 20_000 + 60 * len(METERS)
    assert len(bounded["energymon_1m"]) == len(METERS) * MINUTES - len(METERS[::5]) + 150
    assert bounded == whole


def test_a_rebuilds_large_steps_give_the_rollups_of_small_ones(
    influx: InfluxClient, tmp_path: Path
) -> None:
    write_readings(influx)
    settings = make_settings(home=HOME, data_dir=tmp_path / "rebuild", influx_db=influx.database)
    clock = ManualClock(START_MS + 2 * 86_400_000)
    rebuild(influx, settings, START_MS - 3 * HOUR_MS, START_MS + HOUR_MS, clock=clock)
    rebuilt = rollups(influx)
    for measurement in rebuilt:
        influx.query(f"DROP MEASUREMENT {measurement}")
    small, steps = rebuild_all(influx, tmp_path / "small", 2_000)
    assert len(steps) > 2
    assert rebuilt == small


def test_a_backlog_keeps_the_worker_to_its_share_of_the_time() -> None:
    assert rollup.backlog_pause_s(0.0) == rollup.BACKLOG_PAUSE_S
    for step_s in (0.1, 0.5, 2.0):
        pause_s = rollup.backlog_pause_s(step_s)
        assert step_s / (step_s + pause_s) == pytest.approx(rollup.BACKLOG_SHARE)
