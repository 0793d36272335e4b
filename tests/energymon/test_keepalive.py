"""The kept-alive write path: one connection serves write after write, and a connection the
server closed while it sat idle is never used for the next request."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from energymon.influx import InfluxClient
from energymon.keepalive import KeptAlive
from harness.influxd import InfluxServer

_ACK = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def _count(client: InfluxClient) -> int:
    series = client.query("SELECT count(f) FROM m")
    return int(series[0].values[0][1]) if series else 0


def test_writes_share_one_connection(influx: InfluxClient, influx_server: InfluxServer) -> None:
    pool = KeptAlive("127.0.0.1", influx_server.http_port)
    target = f"/write?db={influx.database}&precision=ms"
    first = pool.post(target, {}, b"m f=1 1000", 5.0)
    (connection,) = pool._idle
    second = pool.post(target, {}, b"m f=2 2000", 5.0)
    assert (first.status, second.status) == (204, 204)
    assert pool._idle == [connection]
    pool.close()
    assert _count(influx) == 2


@pytest.fixture
def closing_server() -> Iterator[tuple[int, threading.Semaphore]]:
    """A server that answers one request per connection, then closes it without saying so (as
    a server does to a connection idle for longer than it keeps them). Yields its port and a
    semaphore released once per connection it closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    closed = threading.Semaphore(0)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(_ACK)
            closed.release()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], closed
    listener.close()
    thread.join(5)


def test_a_connection_closed_while_idle_is_not_used_again(
    closing_server: tuple[int, threading.Semaphore],
) -> None:
    port, closed = closing_server
    pool = KeptAlive("127.0.0.1", port)
    for _ in range(3):
        assert pool.post("/write", {}, b"m f=1 1000", 5.0).status == 204
        assert closed.acquire(timeout=5)
    pool.close()
