"""No input makes the collector answer 500, and one bad request never fails another's: the app,
committer and store in this process over a real influxd, fed hostile JSON (huge integers, deep
nesting, lone surrogates, any value in any field) by hand and by hypothesis. Also: every
request refused as not durable is counted, whatever made the store refuse it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.payload import MAX_METER_ERROR_SENSORS
from energymon.influx import InfluxClient
from energymon.schema import FIELDS
from tests.collector.helpers import batch
from tests.collector.inprocess import DEVICE, KEY, InfluxGate, InProcessCollector, in_process
from tests.collector.test_loop_boundaries import fill_the_disk

pytestmark = pytest.mark.anyio

OTHER, OTHER_KEY = "mega-02", "other-in-process-key"
KEYS = {DEVICE: KEY, OTHER: OTHER_KEY}
SURROGATE = "\ud800"
HUGE = 10**400


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def post_text(c: InProcessCollector, text: str | bytes, key: str = KEY) -> httpx.Response:
    return await c.client.post(
        "/api/v1/readings",
        content=text,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


async def post(c: InProcessCollector, body: Any, key: str = KEY) -> httpx.Response:
    # ASCII escapes, so a lone surrogate travels as `\ud800`, as a hostile client sends it.
    return await post_text(c, json.dumps(body, ensure_ascii=True), key)


def assert_handled(answer: httpx.Response) -> None:
    """A 4xx, or 200 with every reading either stored or quarantined with its reason."""
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200:
        body = answer.json()
        assert body["accepted"] + body["duplicates"] + len(body["rejected"]) >= 0


async def assert_health_answers(c: InProcessCollector) -> None:
    answer = await c.client.get("/health")
    assert answer.status_code == 200
    json.loads(answer.text)


@pytest.mark.parametrize("key", [KEY, "not-a-key"])
async def test_json_nested_fifty_thousand_deep_is_a_client_error(
    influx: InfluxClient, tmp_path: Path, key: str
) -> None:
    async with in_process(influx, tmp_path, max_body_bytes=10**6) as c:
        answer = await post_text(c, "[" * 50_000 + "]" * 50_000, key)
        nested = await post_text(c, '{"device":' * 50_000 + "1" + "}" * 50_000, key)
    expected = (400, "malformed_json") if key == KEY else (401, "unauthorized")
    for a in (answer, nested):
        assert (a.status_code, a.json()["error"]) == expected


async def test_a_401_digit_integer_anywhere_is_refused_or_quarantined(
    influx: InfluxClient, tmp_path: Path
) -> None:
    async with in_process(influx, tmp_path) as c:
        for i, field in enumerate([f.name for f in FIELDS] + ["seq", "uptime_ms"]):
            body = batch([100 + i])
            body["readings"][0][field] = HUGE
            answer = await post(c, body)
            assert_handled(answer)
            if field in {f.name for f in FIELDS}:
                assert answer.status_code == 200 and answer.json()["rejected"], field
        for field in ("boot", "uptime_ms", "dropped"):
            body = batch([200])
            body[field] = -HUGE if field == "dropped" else HUGE
            assert (await post(c, body)).status_code == 400
        await assert_health_answers(c)
    rows = [r for s in influx.query("SELECT * FROM electricity") for r in s.records()]
    assert rows == []  # none stored as a measurement


async def test_a_lone_surrogate_in_any_string_is_refused(
    influx: InfluxClient, tmp_path: Path
) -> None:
    async with in_process(influx, tmp_path) as c:
        sensor = batch([1])
        sensor["readings"][0]["sensor"] = "pzem" + SURROGATE
        device = batch([2], device="mega" + SURROGATE)
        meter = batch([3], meter_errors={"pzem" + SURROGATE: 1})
        for body in (sensor, device, meter):
            answer = await post(c, body)
            assert answer.status_code in (400, 401), answer.text
            assert SURROGATE not in answer.text
        valued = batch([4])
        valued["readings"][0]["voltage_v"] = SURROGATE
        answer = await post(c, valued)
        assert answer.status_code == 200 and answer.json()["rejected"][0]["seq"] == 4
        await assert_health_answers(c)


async def test_too_many_meter_error_counts_are_refused(
    influx: InfluxClient, tmp_path: Path
) -> None:
    """Counts of 2^53 each for more sensors than this would add up beyond a 64-bit integer in
    the health record: refused at the boundary, before they reach InfluxDB."""
    async with in_process(influx, tmp_path) as c:
        many = {f"s{i}": 2**53 for i in range(MAX_METER_ERROR_SENSORS + 1)}
        answer = await post(c, batch([1], meter_errors=many))
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_payload")
        most = {f"s{i}": 2**53 for i in range(MAX_METER_ERROR_SENSORS)}
        assert (await post(c, batch([1], meter_errors=most))).status_code == 200


async def test_a_bad_request_never_fails_another_devices_request_in_its_group(
    influx: InfluxClient, tmp_path: Path
) -> None:
    gate = InfluxGate(influx.url)
    try:
        client = InfluxClient(gate.url, influx.database)
        async with in_process(client, tmp_path, device_keys=KEYS) as c:
            gate.hold()
            # Two groups in their write stage, so what arrives next waits as one group.
            first = []
            for s in (1, 2):
                first.append(
                    asyncio.create_task(
                        post(c, batch([s], uptime_ms=5000, device=OTHER), OTHER_KEY)
                    )
                )
                await asyncio.wait_for(_writes_waiting(gate, s), timeout=10)
            bad = batch([1])
            bad["readings"][0]["sensor"] = "x" + SURROGATE
            together = [
                asyncio.create_task(post(c, bad)),
                asyncio.create_task(post(c, batch([3], uptime_ms=5000, device=OTHER), OTHER_KEY)),
            ]
            await asyncio.sleep(0.05)
            gate.release()
            answers = await asyncio.gather(*first, *together)
    finally:
        gate.close()
    assert [a.status_code for a in answers] == [200, 200, 400, 200]
    seqs = {r["seq"] for s in influx.query("SELECT seq FROM electricity") for r in s.records()}
    assert seqs == {1, 2, 3}


async def _writes_waiting(gate: InfluxGate, count: int) -> None:
    while gate.writes_waiting < count:
        await asyncio.sleep(0.01)


async def test_every_refusal_as_not_durable_is_counted(
    influx: InfluxClient, tmp_path: Path
) -> None:
    gate = InfluxGate(influx.url)
    try:
        client = InfluxClient(gate.url, influx.database, timeout_s=2.0)
        async with in_process(client, tmp_path, spool_max_bytes=10) as c:
            gate.fail()
            spool_full = await post(c, batch([1]))  # InfluxDB down and no room in the spool
            gate.failing = False
            fill_the_disk(c.store)
            disk_full = await post(c, batch([2]))  # the disk cannot take the anchors
            health = (await c.client.get("/health")).json()
    finally:
        gate.close()
    assert [a.json()["error"] for a in (spool_full, disk_full)] == ["not_durable"] * 2
    assert health["counters"]["refused_not_durable"] == 2
    assert health["spool"]["full_refusals"] == 1
