"""The rollup worker inside the real collector process, and `energymon rollup rebuild`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from energymon.influx import InfluxClient
from energymon.settings import Settings
from energymon_cli.main import main
from harness.influxd import InfluxServer
from tests.collector.helpers import batch, wait_for
from tests.conftest import RunningCollector


def _sum_samples(influx: InfluxClient, measurement: str) -> int:
    rows = [r for s in influx.query(f"SELECT sum(samples) FROM {measurement}") for r in s.records()]
    return int(rows[0]["sum"]) if rows else 0


def test_the_collector_rolls_up_what_it_stores_and_reports_every_meter(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    c = start_collector(
        influx_server,
        rollup_interval_s=0.2,
        health_interval_s=0.5,
        layout="mains=mega-01/pzem1;submeter=mega-01/pzem9",
    )
    assert c.post(batch(range(1, 30))).status_code == 200
    for measurement in ("energymon_1m", "energymon_1h", "energymon_day", "energymon_month"):
        assert wait_for(lambda m=measurement: _sum_samples(c.influx, m), lambda n: n == 29) == 29

    def silent_meter() -> list[dict[str, Any]]:
        q = (
            "SELECT online, role FROM energymon_health WHERE component = 'meter' "
            "AND sensor = 'pzem9' ORDER BY time DESC LIMIT 1"
        )
        return [r for s in c.influx.query(q) for r in s.records()]

    [record] = wait_for(silent_meter, bool)
    assert record["online"] == 0 and record["role"] == "submeter"
    health = requests.get(f"{c.url}/health", timeout=10).json()
    assert health["loops"]["rollup"]["lag_s"] is not None
    assert not [f for f in health["loops"]["faults"] if f["loop"] == "rollup"]


def test_rebuild_command(
    influx: InfluxClient,
    tmp_path: Path,
    use_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = (
        "electricity,device=d,home=h1,sensor=s voltage_v=230.0,current_a=1.0,power_w=200.0,"
        "energy_wh={e}i,frequency_hz=50.0,power_factor=0.9,alarm=false,boot=1i,seq={n}i {t}"
    )
    t0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    influx.write([line.format(e=100 + n, n=n, t=t0 + n * 1000) for n in range(90)])
    url = influx.url
    use_settings(home="h1", influx_url=url, influx_db=influx.database, data_dir=tmp_path)
    assert main(["rollup", "rebuild", "--since", "2026-01-01", "--until", "2026-01-02"]) == 0
    assert "rollup points written" in capsys.readouterr().err
    assert _sum_samples(influx, "energymon_1m") == 90
    rows = [r for s in influx.query("SELECT energy_wh FROM energymon_day") for r in s.records()]
    assert [r["energy_wh"] for r in rows] == [89.0]


def test_a_failing_rollup_degrades_health_with_the_reason(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    db = "rollup_conflict"
    conflict = InfluxClient(influx_server.url, db)
    conflict.create_database()
    # An integer energy_wh makes InfluxDB refuse every float one the worker writes into the
    # same shard (this week's).
    conflict.write([f"energymon_1m,home=home energy_wh=1i {int(time.time() * 1000)}"])
    c = start_collector(influx_server, influx_db=db, rollup_interval_s=0.2)
    assert c.post(batch(range(1, 5))).status_code == 200

    def health() -> dict[str, Any]:
        return dict(requests.get(f"{c.url}/health", timeout=10).json())

    report = wait_for(health, lambda h: h["status"] == "degraded")
    assert any(r.startswith("rollup is failing: InfluxRejectedError") for r in report["reasons"])
    conflict.close()
