"""Meters on the collector's own serial ports: emulated PZEM-004T modules on a real pty, polled
by a real collector process, readings stored through the same durable pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from harness.influxd import InfluxServer
from simulator.meter import PtyServer, PzemEmulator
from tests.collector.helpers import wait_for
from tests.conftest import RunningCollector


@pytest.fixture
def meter_bus() -> Iterator[str]:
    server = PtyServer(PzemEmulator((1, 2), seed=7))
    yield server.start()
    server.stop()


def test_serial_meters_feed_the_pipeline(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector], meter_bus: str
) -> None:
    c = start_collector(
        influx_server,
        serial_meters=f"{meter_bus}:1=mains,{meter_bus}:2=heatpump,{meter_bus}:9=absent",
        serial_device="pi-test",
        serial_poll_interval_s=0.2,
        serial_timeout_s=0.1,
    )

    def stored() -> list[dict[str, object]]:
        query = "SELECT * FROM electricity WHERE device = 'pi-test' ORDER BY time"
        return [r for s in c.influx.query(query) for r in s.records()]

    rows = wait_for(stored, lambda rows: len(rows) >= 6)
    assert {r["sensor"] for r in rows} == {"mains", "heatpump"}
    seqs = [r["seq"] for r in rows]
    assert len(set(seqs)) == len(seqs) and min(seqs) == 1
    assert all(80 <= float(str(r["voltage_v"])) <= 260 for r in rows)
    # The meter that never answers is reported as failing, never stored as zeros.
    health = wait_for(
        lambda: requests.get(f"{c.url}/health", timeout=10).json(),
        lambda h: h["devices"].get("pi-test", {}).get("meter_errors", {}).get("absent", 0) > 0,
    )
    assert health["devices"]["pi-test"]["meter_errors"]["absent"] > 0
