from __future__ import annotations

from collections.abc import Iterator

import pytest

from energymon.errors import InfluxRejectedError, InfluxUnavailableError, ReplicationError
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer, free_port


def test_ping_reports_version(influx: InfluxClient) -> None:
    assert influx.ping().startswith("1.")


def test_write_then_query_round_trip(influx: InfluxClient) -> None:
    influx.write(["m,k=a f=1.5,n=2i 1700000000000", "m,k=b f=2.5,n=3i 1700000001000"])
    series = influx.query("SELECT f, n, k FROM m ORDER BY time")
    rows = list(series[0].records())
    assert rows == [
        {"time": 1700000000000, "f": 1.5, "n": 2, "k": "a"},
        {"time": 1700000001000, "f": 2.5, "n": 3, "k": "b"},
    ]


def test_write_creates_missing_database(influx_server: InfluxServer) -> None:
    client = InfluxClient(influx_server.url, "created_on_first_write")
    client.write(["m f=1 1000"])
    assert client.query("SELECT count(f) FROM m")[0].values[0][1] == 1


def test_type_conflict_is_a_permanent_rejection(influx: InfluxClient) -> None:
    influx.write(["m f=1 1000"])
    with pytest.raises(InfluxRejectedError) as info:
        influx.write(['m f="text" 2000'])
    assert info.value.status == 400


def test_unreachable_server_is_transient() -> None:
    client = InfluxClient(f"http://127.0.0.1:{free_port()}", "x", timeout_s=0.5)
    with pytest.raises(InfluxUnavailableError):
        client.write(["m f=1 1000"])


def test_chunked_query_streams_all_rows(influx: InfluxClient) -> None:
    influx.write([f"m f={i} {1000 + i}" for i in range(250)])
    chunks = list(influx.query_chunks("SELECT f FROM m", chunk_size=100))
    assert len(chunks) >= 3
    assert sum(len(s.values) for chunk in chunks for s in chunk) == 250


def test_bad_query_raises(influx: InfluxClient) -> None:
    with pytest.raises(InfluxRejectedError):
        influx.query("SELEKT nothing")


def test_a_1x_server_answers_in_msgpack_which_keeps_floats_floats(influx: InfluxClient) -> None:
    influx.write(["m f=230.0,n=2i 1000", "m f=1.5,n=3i 2000"])
    [series] = influx.query("SELECT f, n FROM m")
    assert series.values == [[1000, 230.0, 2], [2000, 1.5, 3]]
    assert isinstance(series.values[0][1], float)
    assert isinstance(series.values[0][2], int)
    chunks = list(influx.query_chunks("SELECT f FROM m", chunk_size=1))
    assert [s.values for chunk in chunks for s in chunk] == [[[1000, 230.0]], [[2000, 1.5]]]
    with pytest.raises(InfluxRejectedError, match="error parsing query"):
        influx.query("SELEKT nothing")


def test_a_streamed_write_is_sent_while_it_is_produced(influx: InfluxClient) -> None:
    def body() -> Iterator[bytes]:
        for start in range(0, 300, 100):
            yield "".join(f"m f={i} {1000 + i}\n" for i in range(start, start + 100)).encode()

    influx.write_stream(body())
    assert influx.query("SELECT count(f) FROM m")[0].values[0][1] == 300


def test_a_failing_stream_aborts_its_write_and_stores_nothing(influx: InfluxClient) -> None:
    def body() -> Iterator[bytes]:
        yield b"m f=1 1000\n"
        raise ReplicationError("the source went away")

    with pytest.raises(ReplicationError):
        influx.write_stream(body())
    assert influx.query("SELECT count(f) FROM m") == []
