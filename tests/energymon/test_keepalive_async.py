"""Writes from the event loop: one connection serves write after write against a real influxd,
a connection the server closed while it sat idle is never used again, a stalled or garbled
answer is named as no answer, and an answer is read whole however it is framed or split."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energymon.errors import InfluxRejectedError, InfluxUnavailableError
from energymon.influx import InfluxClient
from energymon.keepalive_async import LoopKeptAlive, MalformedAnswerError, read_answer
from harness.influxd import InfluxServer

pytestmark = pytest.mark.anyio

_ACK = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _count(client: InfluxClient) -> int:
    series = client.query("SELECT count(f) FROM m")
    return int(series[0].values[0][1]) if series else 0


async def test_writes_share_one_connection(
    influx: InfluxClient, influx_server: InfluxServer
) -> None:
    pool = LoopKeptAlive("127.0.0.1", influx_server.http_port)
    target = f"/write?db={influx.database}&precision=ms"
    first = await pool.post(target, {}, b"m f=1 1000")
    (connection,) = pool._idle
    second = await pool.post(target, {}, b"m f=2 2000")
    assert (first.status, second.status) == (204, 204)
    assert pool._idle == [connection]
    pool.close()
    assert _count(influx) == 2


async def test_the_client_writes_from_the_loop_and_classifies_a_refusal(
    influx: InfluxClient,
) -> None:
    await influx.write_async(b"m f=1 1000")
    await influx.write_async(b"m f=2 2000")
    assert _count(influx) == 2
    assert influx._loop_kept_alive is not None and len(influx._loop_kept_alive._idle) == 1
    # A field of another type than the stored one: InfluxDB refuses the data itself.
    with pytest.raises(InfluxRejectedError, match="field type conflict"):
        await influx.write_async(b'm f="text" 3000')
    influx.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Serve = Callable[[Handler], Awaitable[int]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts a server on loopback that answers each connection with `handler`; its port."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()


async def test_a_connection_the_server_closed_while_idle_is_not_used_again(
    serve: Serve,
) -> None:
    connections = 0

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_ACK)
        await writer.drain()
        # Closed without a word, as a server closes a connection idle for too long.
        writer.close()

    pool = LoopKeptAlive("127.0.0.1", await serve(answer_once))
    for _ in range(3):
        assert (await pool.post_within("/write", {}, b"m f=1", 5.0, where="w")).status == 204
        # Let the loop see the end of the connection.
        while pool._idle and not pool._idle[0][0].at_eof():
            await asyncio.sleep(0.001)
    assert connections == 3
    pool.close()


async def test_the_host_header_names_the_server_as_a_url_does(serve: Serve) -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(_ACK)
        await writer.drain()

    port = await serve(record)
    pool = LoopKeptAlive("127.0.0.1", port)
    await pool.post("/write?db=x", {"Authorization": "Token t"}, b"m f=1")
    pool.close()
    assert heads[0].startswith(b"POST /write?db=x HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{port}\r\n".encode() in heads[0]
    assert b"Authorization: Token t\r\n" in heads[0]
    assert b"Content-Length: 5\r\n" in heads[0]
    assert LoopKeptAlive("::1", 8086)._authority == "[::1]:8086"


async def test_an_answer_that_stalls_is_no_answer_within_the_deadline(
    serve: Serve,
) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Con")
        await asyncio.sleep(5)

    pool = LoopKeptAlive("127.0.0.1", await serve(stall))
    with pytest.raises(InfluxUnavailableError, match=r"within the deadline of 0\.2 s") as raised:
        await pool.post_within("/write", {}, b"m f=1", 0.2, where="http://x/write")
    assert raised.value.transport
    assert pool._idle == []


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 20x Odd\r\n\r\n",
        b"HTTP/1.1 204 OK\r\nNoColon\r\n\r\n",
        # A head longer than any InfluxDB answer's, which would otherwise be read whole.
        b"HTTP/1.1 204 OK\r\nX-Padding: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
)
async def test_an_answer_that_is_no_http_is_no_answer(serve: Serve, garbage: bytes) -> None:
    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(garbage)
        await writer.drain()

    pool = LoopKeptAlive("127.0.0.1", await serve(babble))
    with pytest.raises(InfluxUnavailableError, match="unreachable or closed") as raised:
        await pool.post_within("/write", {}, b"m f=1", 5.0, where="http://x/write")
    assert isinstance(raised.value.__cause__, MalformedAnswerError)


async def test_nothing_listening_is_no_answer() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        pool = LoopKeptAlive("127.0.0.1", unused.getsockname()[1])
        with pytest.raises(InfluxUnavailableError, match="unreachable"):
            await pool.post_within("/write", {}, b"m f=1", 5.0, where="http://x/write")


def _framed(body: bytes, framing: str, chunks: list[int]) -> bytes:
    head = (
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        "X-Influxdb-Version: 1.6.7\r\n"
    )
    if framing == "length":
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    if framing == "close":
        return (head + "Connection: close\r\n\r\n").encode() + body
    out, rest = [], body
    for size in chunks:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out.append(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
    if rest:
        out.append(f"{len(rest):x}\r\n".encode() + rest + b"\r\n")
    return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(out) + b"0\r\n\r\n"


@given(
    body=st.binary(max_size=300),
    framing=st.sampled_from(["length", "close", "chunked"]),
    chunks=st.lists(st.integers(1, 50), max_size=8),
    splits=st.lists(st.integers(1, 40), max_size=20),
)
def test_an_answer_is_read_whole_however_it_is_framed_or_split(
    body: bytes, framing: str, chunks: list[int], splits: list[int]
) -> None:
    wire = _framed(body, framing, chunks) + b"HTTP/1.1 204 No Content\r\n\r\n"

    async def read() -> None:
        reader = asyncio.StreamReader()
        rest = wire
        for size in splits:
            reader.feed_data(rest[:size])
            rest = rest[size:]
        reader.feed_data(rest)
        if framing == "close":
            reader.feed_eof()
        answer, keep = await read_answer(reader)
        assert (answer.status, answer.reason) == (400, "Bad Request")
        assert ("X-Influxdb-Version", "1.6.7") in answer.headers
        if framing == "close":
            # Everything up to the end of the connection is its body.
            assert answer.body == body + b"HTTP/1.1 204 No Content\r\n\r\n"
            assert not keep
            return
        assert answer.body == body and keep
        # The next answer on the same connection starts where this one ended.
        following, _ = await read_answer(reader)
        assert following.status == 204 and following.body == b""

    asyncio.run(read())
