"""The HTTP contract of docs/api.md, end to end: a real collector process and a real influxd."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import requests

from harness.influxd import InfluxServer
from tests.collector.helpers import batch, reading, wait_for
from tests.conftest import RunningCollector

CONTRACT_EXAMPLE = {
    "device": "mega-01",
    "boot": 17,
    "uptime_ms": 3600500,
    "readings": [
        {
            "seq": 1041,
            "uptime_ms": 3599000,
            "sensor": "pzem1",
            "voltage_v": 229.8,
            "current_a": 1.234,
            "power_w": 270.5,
            "energy_wh": 123456,
            "frequency_hz": 50.0,
            "power_factor": 0.95,
            "alarm": False,
        }
    ],
}


def points(c: RunningCollector, measurement: str = "electricity") -> list[dict[str, object]]:
    return [
        r
        for s in c.influx.query(f'SELECT * FROM "{measurement}" ORDER BY time')
        for r in s.records()
    ]


def test_contract_example(collector: RunningCollector) -> None:
    response = collector.post(CONTRACT_EXAMPLE)
    assert response.status_code == 200
    assert response.json() == {"ack": 1041, "accepted": 1, "duplicates": 0, "rejected": []}
    [row] = points(collector)
    assert {
        k: row[k] for k in ("device", "sensor", "boot", "seq", "voltage_v", "energy_wh", "alarm")
    } == {
        "device": "mega-01",
        "sensor": "pzem1",
        "boot": 17,
        "seq": 1041,
        "voltage_v": 229.8,
        "energy_wh": 123456,
        "alarm": False,
    }


def test_resent_batch_same_timestamps_no_duplicates(collector: RunningCollector) -> None:
    assert collector.post(batch(range(1, 11), uptime_ms=20_000)).json()["accepted"] == 10
    first = [r["time"] for r in points(collector)]
    again = collector.post(batch(range(1, 11), uptime_ms=80_000)).json()
    assert again == {"ack": 10, "accepted": 0, "duplicates": 10, "rejected": []}
    assert [r["time"] for r in points(collector)] == first


def test_late_batch_is_stored_behind_newer_ones(collector: RunningCollector) -> None:
    collector.post(batch(range(6, 11)))
    # Sent later by the same boot: its uptime is higher than the first request's.
    assert collector.post(batch(range(1, 6), uptime_ms=11_000)).json()["accepted"] == 5
    assert [r["seq"] for r in points(collector)] == list(range(1, 11))


def test_quarantine_is_acknowledged_and_listed(collector: RunningCollector) -> None:
    body = batch([1, 2])
    body["readings"][1]["frequency_hz"] = 70.0
    result = collector.post(body).json()
    assert result["ack"] == 2 and result["accepted"] == 1
    assert result["rejected"][0]["seq"] == 2 and "frequency_hz" in result["rejected"][0]["reason"]
    assert [r["seq"] for r in points(collector, "energymon_quarantine")] == [2]


def test_nan_literal_is_quarantined(collector: RunningCollector) -> None:
    body = json.dumps(batch([1])).replace('"power_w": 270.5', '"power_w": NaN').encode()
    result = collector.post(body).json()
    assert result["accepted"] == 0 and result["rejected"][0]["seq"] == 1


def test_every_client_error_stores_nothing(collector: RunningCollector) -> None:
    cases: list[tuple[bytes | dict[str, object], str, int, str]] = [
        (b"{not json", "test-key-mega-01", 400, "malformed_json"),
        (b"[1, 2]", "test-key-mega-01", 400, "invalid_payload"),
        (
            {k: v for k, v in batch([1]).items() if k != "boot"},
            "test-key-mega-01",
            400,
            "invalid_payload",
        ),
        ({**batch([1]), "boot": "17"}, "test-key-mega-01", 400, "invalid_payload"),
        ({**batch([]), "readings": [{"seq": 1}]}, "test-key-mega-01", 400, "invalid_payload"),
        (
            {**batch([]), "readings": [{k: v for k, v in reading(1).items() if k != "power_w"}]},
            "test-key-mega-01",
            400,
            "invalid_payload",
        ),
        ({**batch([1]), "device": "bad\\name"}, "test-key-mega-01", 400, "invalid_payload"),
        ({**batch([1]), "device": "x,home=evil"}, "test-key-mega-01", 401, "unauthorized"),
        (batch([1]), "wrong-key", 401, "unauthorized"),
        (batch([1], device="unknown"), "test-key-mega-01", 401, "unauthorized"),
        (batch([1]), "other-key", 401, "unauthorized"),
        (batch(range(1, 1002)), "test-key-mega-01", 413, "body_too_large"),
        (b" " * 300_000, "test-key-mega-01", 413, "body_too_large"),
    ]
    for body, key, status, code in cases:
        response = collector.post(body, key=key)
        assert (response.status_code, response.json()["error"]) == (status, code), body
        assert response.json()["detail"]
    no_header = requests.post(f"{collector.url}/api/v1/readings", json=batch([1]), timeout=10)
    assert no_header.status_code == 401
    assert points(collector) == []


def test_health_and_openapi(collector: RunningCollector) -> None:
    collector.post(batch([1, 2], dropped=3, meter_errors={"pzem2": 4}))
    health = requests.get(f"{collector.url}/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["influx"]["reachable"] is True
    device = health["devices"]["mega-01"]
    assert (device["last_seq"], device["dropped"], device["meter_errors"]) == (2, 3, {"pzem2": 4})
    schema = requests.get(f"{collector.url}/openapi.json", timeout=10).json()
    assert "/api/v1/readings" in schema["paths"]


def test_spool_survives_sigkill_between_ack_and_influx_write(
    own_influx: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    c = start_collector(own_influx)
    assert c.post(batch(range(1, 4))).json()["accepted"] == 3
    own_influx.stop()
    acked = c.post(batch(range(4, 10), uptime_ms=20_000)).json()
    assert acked["ack"] == 9 and acked["accepted"] == 6  # durable in the spool only
    health = requests.get(f"{c.url}/health", timeout=10).json()
    assert health["status"] == "degraded" and health["spool"]["depth_points"] == 6
    c.process.kill()  # SIGKILL: the spooled readings were never written to InfluxDB
    own_influx.start()
    c.process.start()
    c.post(batch(range(10, 12), uptime_ms=30_000))
    deadline_rows = wait_for(lambda: points(c), lambda rows: len(rows) == 11)
    assert [r["seq"] for r in deadline_rows] == list(range(1, 12))
    # Re-sending after the restart finds them all durable.
    assert c.post(batch(range(1, 12), uptime_ms=40_000)).json()["duplicates"] == 11


def test_requests_beyond_the_concurrency_bound_are_told_to_retry(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    body = json.dumps(batch([1])).encode()
    c = start_collector(influx_server, max_inflight_bytes=len(body) + 10)
    port = int(c.url.rsplit(":", 1)[1])
    # A slow device: headers and half of the body sent, the rest still to come.
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(
            b"POST /api/v1/readings HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer test-key-mega-01\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        busy = wait_for(lambda: c.post(batch([2])), lambda r: r.status_code == 503)
        assert busy.json()["error"] == "busy" and busy.headers["Retry-After"] == "2"
        slow.sendall(body[len(body) // 2 :])
        reply = slow.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 200") and b'"accepted":1' in reply
    assert c.post(batch([2])).json()["accepted"] == 1  # the refused one, retried
