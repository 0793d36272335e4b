"""Fixtures: real influxd processes on free loopback ports, never a mock of the database."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from energymon.influx import InfluxClient
from energymon.settings import ENV_PREFIX, Settings, make_settings
from harness.influxd import InfluxServer
from harness.installation import Installation
from harness.proc import ManagedProcess

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
    process: ManagedProcess
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
    """Starts `energymon collector` as a real child process on `server`, with a database of its
    own and any other settings by name; kills them all at the end."""
    started: list[Installation] = []

    def start(
        server: InfluxServer, influx_db: str | None = None, **settings: Any
    ) -> RunningCollector:
        db = influx_db or f"collector_{next(_db_numbers)}"
        installation = Installation(
            tmp_path / f"collector-{len(started)}",
            local=server,
            cloud=server,
            device_keys={DEVICE: DEVICE_KEY, "other-device": "other-key"},
            **({"influx_db": db, "influx_timeout_s": 1} | settings),
        )
        installation.start("collector")
        started.append(installation)
        return RunningCollector(
            installation.collector,
            installation.collector_url,
            InfluxClient(server.url, db),
            installation.settings.data_dir,
        )

    yield start
    for installation in started:
        installation.kill("collector")


@pytest.fixture
def collector(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> RunningCollector:
    return start_collector(influx_server)


@pytest.fixture
def use_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """For a command run in this process (`main([...])`): exactly these settings, by name, as
    its environment; a misspelt name fails here."""

    def use(**values: Any) -> Settings:
        settings = make_settings(**values)
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            monkeypatch.delenv(name)
        for name, value in settings.to_env().items():
            monkeypatch.setenv(name, value)
        return settings

    return use
