"""The energy panels on rollups the rollup code itself built from raw readings (issue 10's
contract end to end): today's energy and cost across the local midnight, a tariff change at
that midnight, a meter reset and a sub-meter; the day bars."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.rollup_rebuild import rebuild
from energymon.influx import InfluxClient
from energymon.schema import Measurement, Reading
from harness.influxd import InfluxServer
from tests.grafana.test_dashboards import homes, last, panel

HOME = "home-e2e"
ZONE = ZoneInfo("Asia/Jakarta")
MAINS, SUB, CIRCUIT = ("mega-01", "pzem1"), ("mega-01", "pzem2"), ("pi-01", "solar")
MINUTE_MS = 60_000


def _readings(meter: tuple[str, str], times: list[int], counters: list[int]) -> list[str]:
    return [
        Reading(
            meter[0], meter[1], 1, seq, t, Measurement(220.0, 1.0, 200.0, c, 50.0, 0.9, False)
        ).to_line(HOME)
        for seq, (t, c) in enumerate(zip(times, counters, strict=True), start=1)
    ]


def consumption(counters: list[int]) -> list[int]:
    """Each reading's energy: the counter's increase, or after a reset the new value."""
    return [0] + [b - a if b >= a else b for a, b in itertools.pairwise(counters)]


def test_today_and_the_day_bars_on_rollups_built_by_the_rollup_code(
    influx_server: InfluxServer, tmp_path: Path
) -> None:
    from energymon.settings import make_settings  # the rollup's settings

    now_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
    midnight = datetime.fromtimestamp(now_ms / 1000, ZONE).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    midnight_ms = int(midnight.timestamp() * 1000)
    yesterday = (midnight - timedelta(days=1)).date().isoformat()
    tariff = [
        {"from": yesterday, "price_per_kwh": 1000},
        {"from": midnight.date().isoformat(), "price_per_kwh": 2500},
    ]
    # Every minute from 30 minutes before local midnight to 30 after (or to now), one reset
    # after midnight on the mains.
    start = midnight_ms - 30 * MINUTE_MS
    times = [t for t in range(start, midnight_ms + 30 * MINUTE_MS, MINUTE_MS) if t < now_ms]
    after = [i for i, t in enumerate(times) if t >= midnight_ms]
    if len(after) < 3:
        pytest.skip("too close to local midnight for a day on each side")
    mains = [1000 + 7 * i for i in range(len(times))]
    reset = after[1]
    mains = [c if i < reset else 4 + 7 * (i - reset) for i, c in enumerate(mains)]
    sub = [500 + 3 * i for i in range(len(times))]
    circuit = [2000 + 2 * i for i in range(len(times))]
    client = InfluxClient(influx_server.url, "grafana_e2e")
    client.create_database()
    try:
        client.write(
            _readings(MAINS, times, mains)
            + _readings(SUB, times, sub)
            + _readings(CIRCUIT, times, circuit)
        )
        settings = make_settings(
            home=HOME,
            data_dir=tmp_path,
            influx_url=influx_server.url,
            influx_db="grafana_e2e",
            tariff=json.dumps(tariff),
            layout=f"mains={MAINS[0]}/{MAINS[1]};submeter={SUB[0]}/{SUB[1]}",
        )
        rebuild(client, settings, start, now_ms + MINUTE_MS)
        today_wh = sum(
            e
            for counters in (mains, circuit)
            for i, e in enumerate(consumption(counters))
            if times[i] >= midnight_ms
        )
        yesterday_wh = sum(
            e
            for counters in (mains, circuit)
            for i, e in enumerate(consumption(counters))
            if times[i] < midnight_ms
        )
        got = {
            title: last(homes(panel(client, "energymon-home-energy", title))[HOME])
            for title in ("Energy today", "Cost today")
        }
        assert got["Energy today"] == pytest.approx(today_wh / 1000)
        assert got["Cost today"] == pytest.approx(today_wh / 1000 * 2500)
        [bars] = panel(client, "energymon-home-energy", "Cost per day")
        assert dict(bars.values) == pytest.approx(
            {
                midnight_ms - 86_400_000: yesterday_wh / 1000 * 1000,
                midnight_ms: today_wh / 1000 * 2500,
            }
        )
    finally:
        client.query('DROP DATABASE "grafana_e2e"', database=None, method="POST")
        client.close()
