"""The HTTP app in this process (httpx over ASGI, a manual clock, a real influxd): every route,
and every error mapped to its status in the one place that does it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from collector.health import snapshot
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.collector.helpers import batch
from tests.collector.inprocess import START_MS, InfluxGate, in_process

pytestmark = pytest.mark.anyio

ONE_READING = json.dumps(batch([1])).encode()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_readings_are_acknowledged_and_stored_at_their_time(
    influx: InfluxClient, tmp_path: Path
) -> None:
    async with in_process(influx, tmp_path) as c:
        answer = await c.post(batch(range(1, 4), uptime_ms=10_000))
    assert answer.status_code == 200
    assert answer.json() == {"ack": 3, "accepted": 3, "duplicates": 0, "rejected": []}
    rows = [r for s in influx.query("SELECT * FROM electricity") for r in s.records()]
    assert [r["time"] for r in rows] == [START_MS - 10_000 + 1000 * s for s in (1, 2, 3)]


@pytest.mark.parametrize(
    "case",
    [
        (b"{not json", {}, 400, "malformed_json"),
        (b'{"device": "mega-01"}', {}, 400, "invalid_payload"),
        (b"[]", {}, 400, "invalid_payload"),
        (None, {"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        (None, {"Authorization": "Basic xyz"}, 401, "unauthorized"),
        (b"x" * 5000, {}, 413, "body_too_large"),
    ],
)
async def test_each_error_has_its_status(
    influx: InfluxClient,
    tmp_path: Path,
    case: tuple[bytes | None, dict[str, str], int, str],
) -> None:
    body, headers, status, error = case
    async with in_process(influx, tmp_path, max_body_bytes=4096) as c:
        content = body if body is not None else ONE_READING
        answer = await c.client.post(
            "/api/v1/readings",
            content=content,
            headers={"Authorization": "Bearer in-process-key", **headers},
        )
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert answer.json()["detail"]
    assert "Retry-After" not in answer.headers


async def test_a_key_admits_exactly_the_devices_it_belongs_to(
    influx: InfluxClient, tmp_path: Path
) -> None:
    keys = {"mega-01": "shared-key", "mega-02": "shared-key", "mega-03": "own-key"}
    async with in_process(influx, tmp_path, device_keys=keys) as c:
        answers = [
            await c.post(batch([1], device=device), key=key)
            for device, key in (
                ("mega-01", "shared-key"),
                ("mega-02", "shared-key"),
                ("mega-03", "own-key"),
                ("mega-03", "shared-key"),
                ("mega-01", "own-key"),
                ("mega-01", "shared-key "),
                ("mega-04", "shared-key"),
            )
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 401, 401, 200, 401]


async def test_a_full_spool_is_not_durable_with_retry_after(
    own_influx: InfluxServer, tmp_path: Path
) -> None:
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    async with in_process(influx, tmp_path, spool_max_bytes=10, write_timeout_s=1.0) as c:
        own_influx.stop()
        answer = await c.post(batch([1]))
    assert (answer.status_code, answer.json()["error"]) == (503, "not_durable")
    assert answer.headers["Retry-After"] == "30"


async def test_bodies_beyond_the_bound_in_flight_are_told_to_retry(
    influx_server: InfluxServer, influx: InfluxClient, tmp_path: Path
) -> None:
    gate = InfluxGate(influx_server.url)
    gated = InfluxClient(gate.url, influx.database)
    try:
        async with in_process(gated, tmp_path, max_inflight_bytes=len(ONE_READING) * 3) as c:
            gate.hold()
            first = asyncio.create_task(c.post(batch(range(1, 3))))
            while gate.writes_waiting == 0:
                await asyncio.sleep(0.005)
            busy = await c.post(batch(range(3, 5)))
            gate.release()
            assert (await first).status_code == 200
    finally:
        gate.close()
    assert (busy.status_code, busy.json()["error"]) == (503, "busy")
    assert busy.headers["Retry-After"] == "2"


async def test_unknown_routes_and_methods_answer_json(influx: InfluxClient, tmp_path: Path) -> None:
    async with in_process(influx, tmp_path) as c:
        missing = await c.client.get("/nothing")
        wrong = await c.client.get("/api/v1/readings")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "POST"


async def test_health_reports_the_device(influx: InfluxClient, tmp_path: Path) -> None:
    async with in_process(influx, tmp_path) as c:
        await c.post(batch(range(1, 3), dropped=3, meter_errors={"pzem2": 4}))
        c.clock.advance(5)
        health = (await c.client.get("/health")).json()
    assert health["status"] == "ok" and health["influx"]["reachable"] is True
    device = health["devices"]["mega-01"]
    assert (device["last_seq"], device["dropped"], device["meter_errors"]) == (2, 3, {"pzem2": 4})
    assert device["last_contact_age_s"] == 5.0


async def test_health_shows_why_the_device_last_restarted(
    influx: InfluxClient, tmp_path: Path
) -> None:
    report = {"cause": "watchdog", "stage": "send", "watchdog_resets": 3}
    async with in_process(influx, tmp_path) as c:
        await c.post(batch([1]) | {"reset": report})
        health = (await c.client.get("/health")).json()
        lines = snapshot(c.store, c.clock.now_ms()).to_lines("h1")
    assert health["devices"]["mega-01"]["reset"] == report
    device_line = next(line for line in lines if "device=mega-01" in line)
    assert 'reset_cause="watchdog"' in device_line and "watchdog_resets=3i" in device_line
