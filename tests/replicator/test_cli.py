"""`energymon replicator restore` as an operator runs it, against real influxd."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from energymon.influx import InfluxClient
from energymon.schema import Measurement, Reading
from energymon.settings import Settings
from energymon_cli.main import main
from harness.influxd import InfluxServer

HOUR_MS = 3_600_000


def _readings(home_start_ms: int, count: int) -> list[str]:
    m = Measurement(230.0, 1.5, 345.0, 1000, 50.0, 0.98, False)
    return [
        Reading("mega-01", "pzem1", 1, seq, home_start_ms + seq * 60_000, m).to_line(home)
        for home in ("mine", "neighbour")
        for seq in range(1, count + 1)
    ]


@pytest.fixture
def env(
    influx_server: InfluxServer, tmp_path: Path, use_settings: Callable[..., Settings]
) -> Iterator[tuple[InfluxClient, InfluxClient]]:
    local = InfluxClient(influx_server.url, "cli_local")
    cloud = InfluxClient(influx_server.url, "cli_cloud")
    use_settings(
        home="mine",
        data_dir=tmp_path,
        influx_url=influx_server.url,
        influx_db=local.database,
        cloud_url=influx_server.url,
        cloud_db=cloud.database,
    )
    yield local, cloud
    for client in (local, cloud):
        client.query(f'DROP DATABASE "{client.database}"', method="POST")


def _count(client: InfluxClient, home: str) -> int:
    series = client.query(f"SELECT count(power_w) FROM electricity WHERE home = '{home}'")
    return int(series[0].values[0][1]) if series else 0


def test_restore_brings_back_only_this_home_and_can_run_again(
    env: tuple[InfluxClient, InfluxClient], capsys: pytest.CaptureFixture[str]
) -> None:
    local, cloud = env
    start = (int(time.time() * 1000) // HOUR_MS - 30) * HOUR_MS
    cloud.write(_readings(start, 600))  # ten hours of one reading a minute, for two homes
    local.create_database()  # the fresh InfluxDB on the new SD card

    assert main(["replicator", "restore", "--since", "3d"]) == 0
    assert "restored" in capsys.readouterr().out
    assert _count(local, "mine") == 600
    assert _count(local, "neighbour") == 0  # another home's data never comes down

    assert main(["replicator", "restore", "--since", "3d"]) == 0  # idempotent, resumable
    assert _count(local, "mine") == 600
