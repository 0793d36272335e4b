"""A local and a cloud InfluxDB (real influxd processes) for the replication tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.replicator.helpers import T0, Rig

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def cloud_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A second shared influxd standing for the cloud."""
    server = InfluxServer(tmp_path_factory.mktemp("influxd-cloud"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rig(influx_server: InfluxServer, cloud_server: InfluxServer, tmp_path: Path) -> Iterator[Rig]:
    n = next(_numbers)
    local = InfluxClient(influx_server.url, f"local_{n}")
    cloud = InfluxClient(cloud_server.url, f"cloud_{n}")
    local.create_database()
    cloud.create_database()
    yield Rig(local, cloud, tmp_path / "data", ManualClock(T0 + 3_600_000))
    local.close()
    cloud.close()
