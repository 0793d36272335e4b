"""The fake device's logic, driven step by step with a manual clock and a scripted transport.

The HTTP stub at the end tests only the requests transport (status codes, headers); the contract
with the real collector is tested in tests/contract/.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from energymon.backoff import BackoffPolicy
from energymon.clock import ManualClock
from energymon.errors import MeterTimeoutError
from energymon.schema import RawMeasurement
from simulator import device_cli
from simulator.device import FakeDevice
from simulator.device_step import DeviceEvent, SendOutcome
from simulator.sdcard import DeviceStateError
from simulator.transport import RequestsTransport, TransportError
from simulator.wire import encode_batch

RAW = RawMeasurement(2300, 1000, 2300, 5000, 500, 100, False)
Reply = tuple[int, Mapping[str, str], bytes] | Exception


class ConstantMeter:
    def __init__(self) -> None:
        self.sampled: list[float] = []

    def sample(self, elapsed_s: float) -> RawMeasurement:
        self.sampled.append(elapsed_s)
        return RAW


class DeadMeter:
    def sample(self, elapsed_s: float) -> RawMeasurement:
        raise MeterTimeoutError("no answer")


class FakeCollector:
    """Acknowledges like the collector unless a scripted reply is queued."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        self.script: deque[Reply] = deque()
        self.down = False

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        self.requests.append((url, body, dict(headers)))
        if self.down:
            raise TransportError("connection refused")
        if self.script:
            reply = self.script.popleft()
            if isinstance(reply, Exception):
                raise reply
            return reply
        seqs = [r["seq"] for r in json.loads(body)["readings"]]
        ack = {"ack": max(seqs), "accepted": len(seqs), "duplicates": 0, "rejected": []}
        return 200, {}, json.dumps(ack).encode()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.requests]


def make_device(
    clock: ManualClock,
    collector: FakeCollector,
    sensors: tuple[str, ...] = ("pzem1", "pzem2", "pzem3"),
    **kwargs: Any,
) -> FakeDevice:
    meters = kwargs.pop("meters", None) or {s: ConstantMeter() for s in sensors}
    return FakeDevice(
        "http://collector:8080/",
        "mega-01",
        "sekret",
        meters=meters,
        clock=clock,
        transport=collector,
        **kwargs,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def collector() -> FakeCollector:
    return FakeCollector()


def test_polls_every_sensor_once_per_interval_with_seq_from_one(
    clock: ManualClock, collector: FakeCollector
) -> None:
    device = make_device(clock, collector)
    first = device.run_once()
    # Each meter's reply comes after the one before it, as on the firmware's bus.
    assert [(r.seq, r.sensor, r.uptime_ms) for r in first.polled] == [
        (1, "pzem1", 0),
        (2, "pzem2", 40),
        (3, "pzem3", 80),
    ]
    assert first.outcome is SendOutcome.ACKED and first.ack is not None and first.ack.seq == 3
    assert first.buffered == 0
    clock.advance(0.5)
    assert device.run_once().polled == ()
    clock.advance(0.5)
    second = device.run_once()
    assert [(r.seq, r.uptime_ms) for r in second.polled] == [(4, 1000), (5, 1040), (6, 1080)]


def test_request_is_the_canonical_body_with_the_contract_headers(
    clock: ManualClock, collector: FakeCollector
) -> None:
    device = make_device(clock, collector)
    step = device.run_once()
    url, body, headers = collector.requests[0]
    assert url == "http://collector:8080/api/v1/readings"
    assert headers == {
        "Authorization": "Bearer sekret",
        "Content-Type": "application/json",
        "Connection": "close",
    }
    # Sent at uptime 0 in simulated time, but never dated before its readings' replies.
    request_uptime_ms = max(step.uptime_ms, step.sent[-1].uptime_ms)
    assert body == encode_batch(
        "mega-01", 1, request_uptime_ms, step.sent, boot_nonce=device.boot_nonce
    )
    assert 1 <= device.boot_nonce < 2**32


def test_backoff_grows_doubles_and_caps_with_bounded_jitter(
    clock: ManualClock, collector: FakeCollector
) -> None:
    collector.down = True
    device = make_device(clock, collector, backoff=BackoffPolicy(1.0, 60.0, 0.5))
    waits = []
    for _ in range(10):
        step = device.run_once()
        assert step.outcome is SendOutcome.BACKOFF
        waits.append(step.retry_in_s)
        # Nothing goes out before the wait is over, however often the loop runs.
        clock.advance(step.retry_in_s * 0.99)
        sent = len(collector.requests)
        assert device.run_once().outcome is SendOutcome.IDLE
        assert len(collector.requests) == sent
        clock.advance(step.retry_in_s * 0.01)
    nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    for wait, cap in zip(waits, nominal, strict=True):
        assert cap * 0.5 <= wait <= cap
    assert len(set(waits)) == len(waits)  # jittered, not a fixed schedule
    assert device.stats.transport_errors == 10


def test_jitter_is_seeded(clock: ManualClock) -> None:
    def waits(seed: int) -> list[float]:
        collector = FakeCollector()
        collector.down = True
        device = make_device(ManualClock(), collector, seed=seed)
        return [device.run_once().retry_in_s for _ in range(3)]

    assert waits(1) == waits(1)
    assert waits(1) != waits(2)


def test_backoff_resets_after_an_ack(clock: ManualClock, collector: FakeCollector) -> None:
    device = make_device(clock, collector)
    collector.script.extend([(500, {}, b""), (500, {}, b"")])
    clock.advance(device.run_once().retry_in_s)
    clock.advance(device.run_once().retry_in_s)
    assert device.run_once().outcome is SendOutcome.ACKED
    collector.script.append((502, {}, b""))
    clock.advance(1.0)
    assert device.run_once().retry_in_s <= 1.0


def test_retry_after_is_honoured_in_real_seconds(collector: FakeCollector) -> None:
    clock = ManualClock()
    device = make_device(clock, collector, speed=60.0)
    collector.script.append((503, {"retry-after": "7"}, b'{"error":"not_durable"}'))
    step = device.run_once()
    assert step.outcome is SendOutcome.RETRY_AFTER
    assert step.retry_in_s == pytest.approx(7.0)
    assert step.buffered == 3
    clock.advance(6.9)
    assert device.run_once().outcome is SendOutcome.IDLE
    clock.advance(0.1)
    retried = device.run_once()
    assert retried.outcome is SendOutcome.ACKED
    assert retried.sent[0].seq == 1


def test_503_without_retry_after_backs_off(clock: ManualClock, collector: FakeCollector) -> None:
    device = make_device(clock, collector, backoff=BackoffPolicy(2.0, 60.0, 0.0))
    collector.script.append((503, {}, b""))
    step = device.run_once()
    assert step.outcome is SendOutcome.BACKOFF and step.retry_in_s == pytest.approx(2.0)


def test_413_halves_the_batch_until_it_fits(clock: ManualClock, collector: FakeCollector) -> None:
    device = make_device(clock, collector, sensors=("pzem1", "pzem2"), batch_max=20)
    collector.script.extend([(413, {}, b""), (413, {}, b"")])
    clock.advance(9.5)  # ten polls of two meters are due
    steps = [device.run_once()]
    while steps[-1].buffered:
        assert steps[-1].next_due_s == 0.0
        steps.append(device.run_once())
    assert [len(s.sent) for s in steps] == [20, 10, 5, 5, 5, 5]
    assert [s.outcome for s in steps[:3]] == [
        SendOutcome.SPLIT,
        SendOutcome.SPLIT,
        SendOutcome.ACKED,
    ]
    acked = [r.seq for s in steps if s.outcome is SendOutcome.ACKED for r in s.sent]
    assert acked == list(range(1, 21))
    assert device.stats.splits == 2


def test_413_of_a_single_reading_is_a_client_error(
    clock: ManualClock, collector: FakeCollector
) -> None:
    device = make_device(clock, collector, sensors=("pzem1",))
    collector.script.append((413, {}, b'{"error":"body_too_large"}'))
    step = device.run_once()
    assert step.outcome is SendOutcome.CLIENT_ERROR
    assert step.retry_in_s > 0 and step.buffered == 1


def test_other_4xx_is_logged_counted_and_not_retried_hot(
    clock: ManualClock, collector: FakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    device = make_device(clock, collector)
    collector.script.append((401, {}, b'{"error":"unauthorized","detail":"wrong key"}'))
    with caplog.at_level(logging.WARNING, logger="simulator.device"):
        step = device.run_once()
    assert step.outcome is SendOutcome.CLIENT_ERROR and step.status == 401
    assert step.retry_in_s >= 0.5 and step.buffered == 3
    assert device.stats.client_errors == 1
    assert "401" in caplog.text and "unauthorized" in caplog.text
    assert "sekret" not in caplog.text
    for _ in range(100):
        device.run_once()
    assert len(collector.requests) == 1


def test_overflow_keeps_what_is_held_and_reports_dropped(
    clock: ManualClock, collector: FakeCollector
) -> None:
    device = make_device(clock, collector, sensors=("pzem1",), capacity=5)
    collector.down = True
    for _ in range(8):
        step = device.run_once()
        clock.advance(1.0)
    assert (step.buffered, step.dropped) == (5, 3)
    collector.down = False
    clock.advance(120.0)
    step = device.run_once()
    body = collector.bodies()[-1]
    # As the firmware without an SD card: the first five of the outage are kept and sent first;
    # 129 polls in 128 s, of which 124 found the buffer full.
    assert body["dropped"] == 124
    assert [r["seq"] for r in body["readings"]] == [1, 2, 3, 4, 5]
    assert device.stats.dropped == 124


def test_ack_forgets_exactly_the_covered_readings(
    clock: ManualClock, collector: FakeCollector
) -> None:
    device = make_device(clock, collector)
    collector.script.append((200, {}, b'{"ack":2,"accepted":2,"duplicates":0,"rejected":[]}'))
    step = device.run_once()
    assert step.ack is not None and step.ack.seq == 2
    assert step.buffered == 1
    clock.advance(1.0)
    step = device.run_once()
    assert [r.seq for r in step.sent] == [3, 4, 5, 6]


def test_a_200_without_an_ack_forgets_nothing(clock: ManualClock, collector: FakeCollector) -> None:
    device = make_device(clock, collector)
    collector.script.append((200, {}, b'{"ack":null,"accepted":0,"duplicates":0,"rejected":[]}'))
    step = device.run_once()
    assert step.outcome is SendOutcome.BACKOFF and step.buffered == 3


def test_an_ack_beyond_the_request_forgets_only_what_was_sent(
    clock: ManualClock, collector: FakeCollector
) -> None:
    device = make_device(clock, collector, sensors=("pzem1",), batch_max=2)
    collector.down = True
    device.run_once()
    clock.advance(2.0)
    device.run_once()  # seqs 1..3 buffered
    collector.down = False
    clock.advance(device.run_once().retry_in_s)
    collector.script.append((200, {}, b'{"ack":99,"accepted":2,"duplicates":0,"rejected":[]}'))
    step = device.run_once()
    assert [r.seq for r in step.sent] == [1, 2]
    assert step.buffered == 2  # seq 3 and the poll of this step, seq 4
    assert [r.seq for r in device.run_once().sent] == [3, 4]


def test_an_ack_below_the_request_backs_off_instead_of_resending_hot(
    clock: ManualClock, collector: FakeCollector
) -> None:
    device = make_device(clock, collector)
    collector.script.append((200, {}, b'{"ack":0,"accepted":0,"duplicates":0,"rejected":[]}'))
    step = device.run_once()
    assert step.outcome is SendOutcome.BACKOFF and step.buffered == 3 and step.retry_in_s > 0


def test_heartbeat_reports_health_when_no_meter_answers(
    clock: ManualClock, collector: FakeCollector
) -> None:
    collector.script.extend(
        [(200, {}, b'{"ack":null,"accepted":0,"duplicates":0,"rejected":[]}')] * 2
    )
    device = make_device(clock, collector, meters={"pzem1": DeadMeter()}, heartbeat_s=60.0)
    step = device.run_once()
    assert step.outcome is SendOutcome.ACKED and step.events == (DeviceEvent.CONNECTED,)
    assert step.next_due_s == pytest.approx(1.0)  # the next poll
    for _ in range(59):
        clock.advance(1.0)
        assert device.run_once().outcome is SendOutcome.IDLE
    clock.advance(1.0)
    assert device.run_once().outcome is SendOutcome.ACKED
    assert [(b["readings"], b["meter_errors"]) for b in collector.bodies()] == [
        ([], {"pzem1": 1}),
        ([], {"pzem1": 61}),
    ]


def test_meter_errors_are_counted_and_take_no_seq(
    clock: ManualClock, collector: FakeCollector
) -> None:
    meters = {"pzem1": ConstantMeter(), "pzem2": DeadMeter(), "pzem3": ConstantMeter()}
    device = make_device(clock, collector, meters=meters)
    step = device.run_once()
    assert [(r.seq, r.sensor) for r in step.polled] == [(1, "pzem1"), (2, "pzem3")]
    assert collector.bodies()[0]["meter_errors"] == {"pzem2": 1}
    assert device.meter_errors == {"pzem1": 0, "pzem2": 1, "pzem3": 0}


def test_restart_is_a_new_boot_whose_seq_starts_at_one(
    tmp_path: Path, clock: ManualClock, collector: FakeCollector
) -> None:
    state = tmp_path / "mega-01.state.json"
    first = make_device(clock, collector, state_file=state)
    first.run_once()
    collector.down = True
    clock.advance(1.0)
    assert first.run_once().buffered == 3
    first.close()

    collector.down = False
    second = make_device(clock, collector, state_file=state)
    assert (first.boot, second.boot) == (1, 2)
    step = second.run_once()
    # Without an SD card the unsent readings of boot 1 died with the restart.
    assert collector.bodies()[-1]["boot"] == 2
    assert [r.seq for r in step.sent] == [1, 2, 3]
    assert json.loads(state.read_text())["boot"] == 2


def test_persisted_buffer_is_resent_with_its_own_boot_and_uptime(
    tmp_path: Path, clock: ManualClock, collector: FakeCollector
) -> None:
    state = tmp_path / "mega-01.state.json"
    first = make_device(clock, collector, state_file=state, persist_buffer=True, batch_max=4)
    first.run_once()  # boot 1 is now anchored at the collector
    collector.down = True
    for _ in range(3):
        clock.advance(1.0)
        first.run_once()
    first.close()  # readings 4..12 of boot 1 were never acknowledged

    collector.down = False
    collector.requests.clear()
    clock.advance(5.0)
    second = make_device(clock, collector, state_file=state, persist_buffer=True, batch_max=4)
    assert second.restored == 9
    steps = [second.run_once()]
    while steps[-1].buffered:
        steps.append(second.run_once())
    bodies = collector.bodies()
    assert [(b["boot"], [r["seq"] for r in b["readings"]]) for b in bodies] == [
        (1, [4, 5, 6, 7]),
        (1, [8, 9, 10, 11]),
        (1, [12]),
        (2, [1, 2, 3]),
    ]
    # That boot's last uptime, so no reading looks measured after its request.
    assert [b["uptime_ms"] for b in bodies[:3]] == [3080, 3080, 3080]
    # The new boot's: never before its own readings' replies; only its own carry a nonce.
    assert bodies[3]["uptime_ms"] == 80 and "dropped" not in bodies[3]
    assert [b.get("boot_nonce") for b in bodies] == [None, None, None, second.boot_nonce]


def test_persisted_readings_of_a_never_anchored_boot_are_dropped(
    tmp_path: Path, clock: ManualClock, collector: FakeCollector
) -> None:
    state = tmp_path / "mega-01.state.json"
    collector.down = True
    first = make_device(clock, collector, state_file=state, persist_buffer=True)
    first.run_once()
    first.close()
    collector.down = False
    second = make_device(clock, collector, state_file=state, persist_buffer=True)
    assert second.restored == 0
    second.run_once()
    body = collector.bodies()[-1]
    assert (body["boot"], body["dropped"]) == (2, 3)


def test_persisted_buffer_survives_a_torn_last_line_but_not_garbage(
    tmp_path: Path, clock: ManualClock, collector: FakeCollector
) -> None:
    state = tmp_path / "mega-01.state.json"
    first = make_device(clock, collector, state_file=state, persist_buffer=True)
    first.run_once()
    collector.down = True
    clock.advance(1.0)
    first.run_once()
    first.close()
    journal = tmp_path / "mega-01.state.json.buffer"
    with journal.open("a") as out:
        out.write('{"r":[1,7,20')
    second = make_device(clock, collector, state_file=state, persist_buffer=True)
    assert second.restored == 3
    second.close()
    journal.write_text("garbage\n" + journal.read_text())
    with pytest.raises(DeviceStateError):
        make_device(clock, collector, state_file=state, persist_buffer=True)


def test_speed_makes_uptime_run_faster_than_the_clock(
    clock: ManualClock, collector: FakeCollector
) -> None:
    meter = ConstantMeter()
    device = make_device(clock, collector, meters={"pzem1": meter}, speed=60.0, batch_max=100)
    device.run_once()
    clock.advance(1.0)
    step = device.run_once()
    assert step.uptime_ms == 60_000
    assert len(step.polled) == 60
    assert meter.sampled[-1] == 60.0


def test_events_mark_connection_and_backlog(clock: ManualClock, collector: FakeCollector) -> None:
    device = make_device(clock, collector, batch_max=4)
    events = [device.run_once().events]
    collector.down = True
    for _ in range(4):
        clock.advance(1.0)
        events.append(device.run_once().events)
    collector.down = False
    clock.advance(60.0)
    step = device.run_once()
    while step.buffered:
        events.append(step.events)
        step = device.run_once()
    events.append(step.events)
    flat = [e for step_events in events for e in step_events]
    assert flat == [
        DeviceEvent.CONNECTED,
        DeviceEvent.DISCONNECTED,
        DeviceEvent.BACKLOG_BUILDING,
        DeviceEvent.CONNECTED,
        DeviceEvent.BACKLOG_DRAINED,
    ]


def test_run_stops_when_the_poll_limit_is_drained(collector: FakeCollector) -> None:
    device = FakeDevice(
        "http://collector:8080",
        "mega-01",
        "sekret",
        sensors=("pzem1", "pzem2"),
        speed=1000.0,
        poll_limit=5,
        transport=collector,
    )
    device.run(threading.Event())
    assert device.done
    seqs = [r["seq"] for body in collector.bodies() for r in body["readings"]]
    assert seqs == list(range(1, 11))


# --- the requests transport over real HTTP (a stub, not the collector) ------------------------


class _StubHandler(BaseHTTPRequestHandler):
    replies: deque[tuple[int, dict[str, str], bytes]]
    seen: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((dict(self.headers), body))
        if self.replies:
            status, headers, reply = self.replies.popleft()
        else:
            seqs = [r["seq"] for r in json.loads(body)["readings"]]
            ack = {"ack": max(seqs, default=None), "accepted": len(seqs), "duplicates": 0}
            status, headers, reply = 200, {}, json.dumps({**ack, "rejected": []}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[_StubHandler]]]:
    handler = type("Handler", (_StubHandler,), {"replies": deque(), "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_transport_carries_status_headers_and_retry_after_over_http(
    stub: tuple[str, type[_StubHandler]], clock: ManualClock
) -> None:
    url, handler = stub
    handler.replies.extend(
        [
            (503, {"Retry-After": "3"}, b'{"error":"not_durable","detail":"spool full"}'),
            (200, {}, b'{"ack":3,"accepted":3,"duplicates":0,"rejected":[]}'),
        ]
    )
    transport = RequestsTransport(timeout_s=5.0)
    device = FakeDevice(url, "mega-01", "sekret", clock=clock, transport=transport)
    step = device.run_once()
    assert (step.status, step.outcome, step.retry_in_s) == (503, SendOutcome.RETRY_AFTER, 3.0)
    clock.advance(3.0)
    assert device.run_once().outcome is SendOutcome.ACKED
    headers, body = handler.seen[0]
    assert headers["Authorization"] == "Bearer sekret"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["readings"][0]["seq"] == 1
    device.close()


def test_transport_turns_a_refused_connection_into_transport_error() -> None:
    transport = RequestsTransport(timeout_s=1.0)
    with pytest.raises(TransportError):
        transport.post("http://127.0.0.1:9/api/v1/readings", b"{}", {})
    transport.close()


def test_cli_logs_events_not_readings_and_stops_after_count(
    stub: tuple[str, type[_StubHandler]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = stub
    handler.replies.append((503, {"Retry-After": "0"}, b'{"error":"not_durable"}'))
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=None)
    device_cli.add_arguments(parser)
    argv = f"--key sekret --sensors a,b --speed 1000 --count 50 --batch 4 --state-dir {tmp_path}"
    args = parser.parse_args(["--url", url, *argv.split()])
    with caplog.at_level(logging.INFO):
        assert device_cli.run(args) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) <= 6, messages
    assert any("waiting for the collector" in m for m in messages)
    assert any("connected to" in m for m in messages)
    assert "100 readings acknowledged" in messages[-1]
    assert not any("sekret" in m for m in messages)
    assert (tmp_path / "mega-01.state.json").exists()
