"""Slow and keyless clients cannot starve the devices: real sockets trickling bodies into a real
collector process on a real influxd. The key is checked before the body is read, a body has a
read deadline, and one device cannot hold the whole in-flight budget."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from harness.influxd import InfluxServer
from tests.collector.helpers import batch
from tests.conftest import DEVICE_KEY, RunningCollector

DECLARED = 262_144
OTHER, OTHER_KEY = "other-device", "other-key"


@contextmanager
def trickling(c: RunningCollector, headers: str) -> Iterator[socket.socket]:
    """A request announcing a body of `DECLARED` bytes, of which only the first has come."""
    port = int(c.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(
            b"POST /api/v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + headers.encode()
            + f"Content-Length: {DECLARED}\r\n\r\n{{".encode()
        )
        yield s


def answer_of(s: socket.socket) -> bytes:
    """The status line and headers the collector answered on `s` (or b"" if it closed)."""
    try:
        return s.recv(65536)
    except ConnectionResetError:
        return b""


def post_as(c: RunningCollector, device: str, key: str, seq: int) -> requests.Response:
    return c.post(batch([seq], device=device), key=key)


def test_keyless_slow_connections_cannot_lock_out_devices(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    c = start_collector(influx_server)
    with (
        trickling(c, "") as keyless,
        trickling(c, "Authorization: Bearer guessed\r\n") as wrong_key,
    ):
        # Refused on their headers alone: they never hold any of the budget.
        assert answer_of(keyless).startswith(b"HTTP/1.1 401")
        assert answer_of(wrong_key).startswith(b"HTTP/1.1 401")
        assert c.post(batch([1])).status_code == 200
        assert post_as(c, OTHER, OTHER_KEY, 1).status_code == 200


def test_a_trickled_body_is_cut_off_and_its_budget_returned(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    c = start_collector(influx_server, body_read_timeout_s=1.0)
    started = time.monotonic()
    with trickling(c, f"Authorization: Bearer {DEVICE_KEY}\r\n") as slow:
        # A byte now and then, each well within any idle timeout, never the whole body.
        slow.settimeout(0.25)
        reply = b""
        while not reply and time.monotonic() - started < 10:
            slow.sendall(b" ")
            try:
                reply = slow.recv(65536)
            except TimeoutError:
                continue
        assert reply.startswith(b"HTTP/1.1 408"), reply
        slow.settimeout(10)
        while not reply.endswith(b"}"):
            more = slow.recv(65536)
            assert more, reply
            reply += more
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"] == "body_timeout"
    assert time.monotonic() - started < 8
    # The slow request's share came back: the same device may post at once.
    assert c.post(batch([1])).status_code == 200


def test_one_device_cannot_take_the_whole_in_flight_budget(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    c = start_collector(influx_server, max_inflight_bytes=2 * DECLARED, body_read_timeout_s=30)
    auth = f"Authorization: Bearer {DEVICE_KEY}\r\n"
    with trickling(c, auth) as first, trickling(c, auth) as second:
        # Its second body would take the rest of the budget: refused before it is read.
        answered, _, _ = select.select([first, second], [], [], 10)
        assert len(answered) == 1
        assert answer_of(answered[0]).startswith(b"HTTP/1.1 503")
        # Another device still gets in.
        assert post_as(c, OTHER, OTHER_KEY, 1).status_code == 200


def test_the_device_header_must_name_the_keys_device(
    influx_server: InfluxServer, start_collector: Callable[..., RunningCollector]
) -> None:
    c = start_collector(influx_server)

    def post_naming(device: str, seq: int) -> requests.Response:
        return requests.post(
            f"{c.url}/api/v1/readings",
            json=batch([seq]),
            headers={"Authorization": f"Bearer {DEVICE_KEY}", "X-Device": device},
            timeout=10,
        )

    assert post_naming("mega-01", 1).status_code == 200
    assert post_naming(OTHER, 2).status_code == 401
    # Old firmware names no device in its headers: the key alone says which device it is.
    assert c.post(batch([3])).status_code == 200
    # A key of one device cannot post for another.
    assert c.post(batch([4], device=OTHER)).status_code == 401
