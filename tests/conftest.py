"""Fixtures: real influxd processes on free loopback ports, never a mock of the database."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from energymon.influx import InfluxClient
from energymon.influxd import InfluxServer, free_port
from energymon.proc import ServiceProcess, collector_process

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


DEVICE = "mega-01"
DEVICE_KEY = "test-key-mega-01"


@dataclass
class RunningCollector:
    process: ServiceProcess
    url: str
    influx: InfluxClient
    data_dir: Path

    def post(self, body: Any, key: str = DEVICE_KEY, **kwargs: Any) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        return requests.post(
            f"{self.url}/api/v1/readings", data=data, headers=headers, timeout=30, **kwargs
        )


@pytest.fixture
def start_collector(tmp_path: Path) -> Iterator[Callable[..., RunningCollector]]:
    """Starts `energymon collector` as a real child process; stops them all at the end."""
    started: list[ServiceProcess] = []

    def start(influx_url: str, influx_db: str | None = None, **env: str) -> RunningCollector:
        db = influx_db or f"collector_{next(_db_numbers)}"
        data_dir = tmp_path / f"collector-{len(started)}"
        port = free_port()
        process = collector_process(
            data_dir=data_dir,
            influx_url=influx_url,
            influx_db=db,
            port=port,
            device_keys=f"{DEVICE}={DEVICE_KEY},other-device=other-key",
            extra_env={"ENERGYMON_INFLUX_TIMEOUT_S": "1", **env},
        )
        process.start()
        started.append(process)
        return RunningCollector(
            process, f"http://127.0.0.1:{port}", InfluxClient(influx_url, db), data_dir
        )

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def collector(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> RunningCollector:
    return start_collector(influx_server.url)
