"""Fixtures: real influxd processes on free loopback ports, never a mock of the database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from energymon.influx import InfluxClient
from energymon.influxd import InfluxServer

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One influxd shared by the tests that only need a database of their own."""
    server = InfluxServer(tmp_path_factory.mktemp("influxd-shared"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx(influx_server: InfluxServer) -> Iterator[InfluxClient]:
    """A client on a fresh, empty database of the shared server."""
    client = InfluxClient(influx_server.url, f"test_{next(_db_numbers)}")
    client.create_database()
    yield client
    client.close()


@pytest.fixture
def own_influx(tmp_path: Path) -> Iterator[InfluxServer]:
    """An influxd of the test's own, for tests that stop, kill or restart the database."""
    server = InfluxServer(tmp_path / "influxd")
    server.start()
    yield server
    server.kill()
