"""The client against a real influxd behind a misbehaving proxy, and over TLS: what each answer
means, what is never followed, how long a request may take, what is trusted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import certifi
import pytest

from energymon.errors import (
    ConfigError,
    InfluxConfigError,
    InfluxRejectedError,
    InfluxUnavailableError,
)
from energymon.influx import InfluxClient
from energymon.settings import load_settings
from energymon_cli.main import main
from harness import faultproxy
from harness.faultproxy import FaultProxy
from harness.influxd import InfluxServer, TLSFiles
from tests.tls import make_tls_files

_numbers = iter(range(1, 10_000))


@pytest.fixture
def proxy(influx_server: InfluxServer) -> Iterator[FaultProxy]:
    with FaultProxy(influx_server.http_port) as p:
        yield p


def _client(proxy: FaultProxy, timeout_s: float = 5.0) -> InfluxClient:
    return InfluxClient(proxy.url, f"transport_{next(_numbers)}", timeout_s=timeout_s)


def _count(client: InfluxClient, direct_url: str) -> int:
    direct = InfluxClient(direct_url, client.database)
    series = direct.query("SELECT count(f) FROM m")
    return int(series[0].values[0][1]) if series else 0


def _body() -> Iterator[bytes]:
    yield b"m f=1 1000\n"
    yield b"m f=2 2000\n"


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_and_names_its_target(
    proxy: FaultProxy, influx_server: InfluxServer, code: int
) -> None:
    client = _client(proxy)
    client.create_database()
    proxy.set(faultproxy.redirect(code, influx_server.url))
    # requests would send the streamed body again empty, and InfluxDB acknowledge that.
    with pytest.raises(InfluxConfigError, match=f"redirect \\({code}\\) to {influx_server.url}"):
        client.write_stream(_body())
    with pytest.raises(InfluxConfigError, match="redirect"):
        client.write(["m f=1 1000"])
    with pytest.raises(InfluxConfigError, match="redirect"):
        asyncio.run(client.write_async(b"m f=1 1000"))
    with pytest.raises(InfluxConfigError, match="redirect"):
        client.query("SELECT * FROM m")
    assert _count(client, influx_server.url) == 0
    proxy.clear()
    client.write_stream(_body())
    assert _count(client, influx_server.url) == 2


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (404, b"404 page not found\n"),  # a load balancer during a deploy
        (408, b"request timeout"),
        (413, b"<html>413 Request Entity Too Large</html>"),
        (200, b"<html>Sign in to the hotel Wi-Fi</html>"),  # a captive portal
        (400, b"<html>400 Bad Request</html>"),  # a proxy's, not InfluxDB's
        (418, b""),
        (502, b"bad gateway"),
    ],
)
def test_what_a_proxy_answers_is_transient(
    proxy: FaultProxy, influx_server: InfluxServer, code: int, body: bytes
) -> None:
    client = _client(proxy)
    client.create_database()
    proxy.set(faultproxy.status(code, body, paths=["/write", "/query"]))
    with pytest.raises(InfluxUnavailableError) as info:
        client.write_stream(_body())
    assert info.value.status == code
    with pytest.raises(InfluxUnavailableError):
        client.write(["m f=1 1000"])
    with pytest.raises(InfluxUnavailableError) as info:
        asyncio.run(client.write_async(b"m f=1 1000"))
    assert info.value.status == code
    with pytest.raises(InfluxUnavailableError):
        client.query("SELECT * FROM m")


def test_only_influxdb_itself_refuses_data_for_good(
    proxy: FaultProxy, influx_server: InfluxServer
) -> None:
    client = _client(proxy)
    client.write(["m f=1 1000"])
    with pytest.raises(InfluxRejectedError) as info:
        client.write(['m f="text" 2000'])
    assert info.value.status == 400
    with pytest.raises(InfluxRejectedError, match="unable to parse"):
        client.write_stream(iter([b"m f=1 not-a-time\n"]))
    with pytest.raises(InfluxRejectedError) as info:
        asyncio.run(client.write_async(b'm f="text" 3000'))
    assert info.value.status == 400


def test_a_missing_database_is_created_once_then_left_to_the_caller(
    proxy: FaultProxy, influx_server: InfluxServer
) -> None:
    client = _client(proxy)
    client.create_database()
    missing = b'{"error":"database not found: \\"x\\""}'
    headers = [("X-Influxdb-Version", "1.6.7"), ("Content-Type", "application/json")]
    proxy.set(faultproxy.status(404, missing, headers=headers, paths=["/write"]))
    with pytest.raises(InfluxUnavailableError, match="404"):
        client.write(["m f=1 1000"])
    writes = [s for s in proxy.seen() if s.path == "/write"]
    creates = [s for s in proxy.seen() if s.path == "/query"]
    assert (len(writes), len(creates)) == (2, 2)  # two writes, the database created again
    with pytest.raises(InfluxUnavailableError, match="404"):
        asyncio.run(client.write_async(b"m f=1 1000"))
    writes = [s for s in proxy.seen() if s.path == "/write"]
    creates = [s for s in proxy.seen() if s.path == "/query"]
    # From an event loop as from a thread: two writes, the database created again once.
    assert (len(writes), len(creates)) == (4, 3)
    with pytest.raises(InfluxUnavailableError, match="404"):
        client.write_stream(_body())
    proxy.clear()
    client.write_stream(_body())  # the next write creates the database first
    assert _count(client, influx_server.url) == 2


def test_retry_after_is_read_in_both_forms_on_any_transient_status(proxy: FaultProxy) -> None:
    client = _client(proxy)
    client.create_database()
    proxy.set(faultproxy.status(429, headers=[("Retry-After", "17")]))
    with pytest.raises(InfluxUnavailableError) as info:
        client.write(["m f=1 1000"])
    assert info.value.retry_after_s == 17
    with pytest.raises(InfluxUnavailableError) as info:
        asyncio.run(client.write_async(b"m f=1 1000"))
    assert info.value.retry_after_s == 17
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
    proxy.set(faultproxy.status(408, headers=[("Retry-After", when)]))
    with pytest.raises(InfluxUnavailableError) as info:
        client.write(["m f=1 1000"])
    assert info.value.retry_after_s is not None and 35 < info.value.retry_after_s <= 40


def test_a_trickled_answer_is_cut_at_the_overall_deadline(proxy: FaultProxy) -> None:
    client = _client(proxy, timeout_s=1.5)
    client.create_database()
    # A byte every half second: every read is well within the socket timeout.
    proxy.set(faultproxy.trickle(0.5, paths=["/write", "/query"]))
    for attempt in (
        lambda: client.write(["m f=1 1000"]),
        lambda: asyncio.run(client.write_async(b"m f=1 1000")),
        lambda: client.query("SHOW MEASUREMENTS"),
    ):
        began = time.monotonic()
        with pytest.raises(InfluxUnavailableError, match=r"deadline of 1\.5 s") as info:
            attempt()
        assert time.monotonic() - began < 3.0
        assert info.value.transport
    proxy.set(faultproxy.hang(paths=["/write"]))
    began = time.monotonic()
    with pytest.raises(InfluxUnavailableError, match="deadline"):
        client.write_stream(_body())
    assert time.monotonic() - began < 3.0


def test_a_body_limit_that_resets_the_connection_is_a_transport_failure(
    proxy: FaultProxy,
) -> None:
    client = _client(proxy)
    client.create_database()
    proxy.set(faultproxy.reset_above(100, paths=["/write"]))
    lines = [f"m f={i} {1000 + i}" for i in range(50)]
    with pytest.raises(InfluxUnavailableError) as info:
        client.write(lines)
    assert info.value.transport
    client.write(lines[:3])  # small enough to pass


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles
) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path_factory.mktemp("influxd-tls"), tls=tls_files)
    server.start()
    yield server
    server.stop()


def test_the_configured_ca_wins_over_the_environment(
    tls_server: InfluxServer, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another bundle in the environment, as a Docker base image or a shell profile sets it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    client = InfluxClient(tls_server.url, "tls", ca_file=tls_files.ca)
    assert client.ping().startswith("1.")
    client.write(["m f=1 1000"])
    assert client.query("SELECT count(f) FROM m")[0].values[0][1] == 1


def test_the_environment_alone_cannot_make_a_certificate_trusted(
    tls_server: InfluxServer, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls_files.ca))
    client = InfluxClient(tls_server.url, "tls")
    with pytest.raises(InfluxConfigError, match=r"certificate .* is not trusted") as info:
        client.ping()
    assert "ENERGYMON_CLOUD_CA_FILE" in str(info.value)


def test_a_certificate_signed_by_another_ca_is_named_as_such(
    tls_server: InfluxServer, tmp_path: Path
) -> None:
    other = make_tls_files(tmp_path / "other", ca_name="someone else")
    client = InfluxClient(tls_server.url, "tls", ca_file=other.ca)
    with pytest.raises(InfluxConfigError, match=r"TLS certificate of https://127\.0\.0\.1"):
        client.write(["m f=1 1000"])
    with pytest.raises(ConfigError, match="does not exist"):
        InfluxClient(tls_server.url, "tls", ca_file=tmp_path / "missing.pem")


def test_credentials_in_a_url_are_refused_without_being_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        InfluxClient("https://home-a:s3cret-pw@cloud.example:8086", "energymon")
    assert "s3cret-pw" not in str(info.value)
    assert "https://***@cloud.example:8086" in str(info.value)
    monkeypatch.setenv("ENERGYMON_CLOUD_URL", "https://home-a:s3cret-pw@cloud.example:8086")
    with pytest.raises(ConfigError) as settings_info:
        load_settings()
    assert "s3cret-pw" not in str(settings_info.value)
    assert main(["config", "show"]) == 2
    shown = capsys.readouterr()
    assert "s3cret-pw" not in shown.out + shown.err
    assert "ENERGYMON_CLOUD_URL" in shown.err


def test_clear_text_credentials_cross_no_network_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="clear text"):
        InfluxClient("http://cloud.example:8086", "energymon", username="a", password="pw")
    with pytest.raises(ConfigError, match="clear text"):
        InfluxClient("http://192.0.2.7:8086", "energymon", token="tok")
    InfluxClient(
        "http://cloud.example:8086", "e", username="a", password="pw", allow_http_credentials=True
    )
    # Loopback never leaves the machine; https is fine anywhere.
    InfluxClient("http://127.0.0.1:8086", "e", username="a", password="pw")
    InfluxClient("http://localhost:8086", "e", token="tok")
    InfluxClient("https://cloud.example:8086", "e", username="a", password="pw")


def test_a_streamed_answer_is_timed_only_while_waiting_for_the_server(
    proxy: FaultProxy, influx_server: InfluxServer
) -> None:
    direct = InfluxClient(influx_server.url, f"transport_{next(_numbers)}", timeout_s=1.0)
    total = 200_000
    for start in range(0, total, 50_000):
        direct.write([f"m f={i}.5,g={i}i,h=true {1000 + i}" for i in range(start, start + 50_000)])
    # The caller takes longer than the deadline between pieces (it writes a batch meanwhile),
    # and the answer is larger than the socket buffers, so the server waits for it.
    rows = 0
    for chunk in direct.query_chunks("SELECT f, g, h FROM m", chunk_size=25_000):
        rows += sum(len(s.values) for s in chunk)
        time.sleep(1.2)
    assert rows == total
    # A server that stalls in the middle of a streamed answer is cut.
    through = InfluxClient(proxy.url, direct.database, timeout_s=1.0)
    through.ping()
    proxy.set(faultproxy.trickle(0.3, paths=["/query"]))
    began = time.monotonic()
    with pytest.raises(InfluxUnavailableError, match="deadline"):
        list(through.query_chunks("SELECT f FROM m", chunk_size=1))
    assert time.monotonic() - began < 3.0
