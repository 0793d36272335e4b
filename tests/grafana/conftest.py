from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.grafana.known_data import write_known_data
from tests.grafana.rollup_data import Calendar, write_rollup_data

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def known(influx_server: InfluxServer) -> Iterator[InfluxClient]:
    """A database holding `known_data`, written relative to the current time."""
    client = InfluxClient(influx_server.url, f"grafana_{next(_numbers)}")
    client.create_database()
    write_known_data(client, int(time.time() * 1000) // 1000 * 1000)
    yield client
    client.close()


@pytest.fixture(scope="module")
def energy(influx_server: InfluxServer) -> Iterator[tuple[InfluxClient, Calendar]]:
    """`known_data` plus the rollup, home and per-meter health points the dashboards read,
    in a database of its own (the alert rules' known data stays as it is)."""
    client = InfluxClient(influx_server.url, f"grafana_{next(_numbers)}")
    client.create_database()
    now_ms = int(time.time() * 1000) // 1000 * 1000
    write_known_data(client, now_ms)
    yield client, write_rollup_data(client, now_ms)
    client.close()
