"""The fault-injecting proxy does what each fault says, to the requests it names, and relays
everything else to the real influxd faithfully."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from harness import faultproxy
from harness.faultproxy import FaultProxy
from harness.influxd import InfluxServer


@pytest.fixture
def proxy(influx_server: InfluxServer) -> Iterator[FaultProxy]:
    with FaultProxy(influx_server.http_port) as p:
        yield p


def test_relays_faithfully_without_a_fault(proxy: FaultProxy) -> None:
    requests.post(f"{proxy.url}/query", data={"q": "CREATE DATABASE relayed"}, timeout=5)
    answer = requests.post(
        f"{proxy.url}/write", params={"db": "relayed"}, data=b"m f=1 1", timeout=5
    )
    assert answer.status_code == 204
    assert answer.headers["X-Influxdb-Version"].startswith("1.")
    chunked = requests.post(
        f"{proxy.url}/write", params={"db": "relayed"}, data=iter([b"m f=2 2\n", b"m f=3 3\n"]),
        timeout=5,
    )  # fmt: skip
    assert chunked.status_code == 204
    result = requests.get(
        f"{proxy.url}/query", params={"db": "relayed", "q": "SELECT count(f) FROM m"}, timeout=5
    )
    assert result.json()["results"][0]["series"][0]["values"][0][1] == 3
    assert [s.action for s in proxy.seen()] == ["pass"] * 4


def test_statuses_redirects_and_counts(proxy: FaultProxy) -> None:
    proxy.set(faultproxy.status(404, b"404 page not found\n", paths=["/write"], count=2))
    for _ in range(2):
        answer = requests.post(f"{proxy.url}/write", data=b"x", timeout=5)
        assert (answer.status_code, answer.text) == (404, "404 page not found\n")
        assert "X-Influxdb-Version" not in answer.headers
    assert requests.get(f"{proxy.url}/ping", timeout=5).status_code == 204  # path not named
    assert requests.post(f"{proxy.url}/write", timeout=5).status_code != 404  # count spent
    proxy.set(faultproxy.redirect(308, "https://elsewhere.example:8086/"))
    answer = requests.post(
        f"{proxy.url}/write?db=x", data=b"m f=1", allow_redirects=False, timeout=5
    )
    assert answer.status_code == 308
    assert answer.headers["Location"] == "https://elsewhere.example:8086/write?db=x"
    proxy.set(faultproxy.status(503, headers=[("Retry-After", "7")]))
    assert requests.get(f"{proxy.url}/ping", timeout=5).headers["Retry-After"] == "7"


def test_trickle_reset_and_hang(proxy: FaultProxy) -> None:
    proxy.set(faultproxy.trickle(0.01, paths=["/ping"], count=1))
    began = time.monotonic()
    assert requests.get(f"{proxy.url}/ping", timeout=5).status_code == 204
    assert time.monotonic() - began > 1  # a couple of hundred bytes, one every 10 ms
    proxy.set(faultproxy.reset_above(1000, paths=["/write"]))
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{proxy.url}/write?db=x", data=b"m f=1 1\n" * 1000, timeout=5)
    assert requests.post(f"{proxy.url}/write?db=x", data=b"m f=1 1", timeout=5).status_code
    proxy.set(faultproxy.hang(paths=["/ping"]))
    with pytest.raises(requests.Timeout):
        requests.get(f"{proxy.url}/ping", timeout=0.5)
    assert [s.action for s in proxy.seen()] == ["trickle", "reset", "pass", "hang"]
