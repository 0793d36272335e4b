from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.grafana.known_data import write_known_data

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def known(influx_server: InfluxServer) -> Iterator[InfluxClient]:
    """A database holding `known_data`, written relative to the current time."""
    client = InfluxClient(influx_server.url, f"grafana_{next(_numbers)}")
    client.create_database()
    write_known_data(client, int(time.time() * 1000) // 1000 * 1000)
    yield client
    client.close()
