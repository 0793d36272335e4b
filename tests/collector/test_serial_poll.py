"""The serial poller against emulated meters on real pseudo-terminals."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest

from collector.serial_poll import SerialMeter, SerialPoller, parse_serial_meters
from collector.submission import Candidate, Submission
from energymon.boundary import ErrorBoundary, Faults
from energymon.clock import ManualClock
from energymon.errors import ConfigError, SpoolFullError
from energymon.schema import Reading
from energymon.settings import load_settings
from simulator.meter import Fault, FaultKind, PtyServer, PzemEmulator
from tests.collector.helpers import wait_for

TIMEOUT_S = 0.05


# --- the setting -----------------------------------------------------------------------------


def test_parse_the_documented_example() -> None:
    text = "/dev/ttyUSB0:1=mains,/dev/ttyUSB0:2=heatpump,/dev/ttyUSB1:1=garage"
    assert parse_serial_meters(text) == (
        SerialMeter("/dev/ttyUSB0", 1, "mains"),
        SerialMeter("/dev/ttyUSB0", 2, "heatpump"),
        SerialMeter("/dev/ttyUSB1", 1, "garage"),
    )


def test_parse_tolerates_spaces_hex_and_colons_in_ports() -> None:
    text = " /dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0:0x10 = solar , "
    assert parse_serial_meters(text) == (
        SerialMeter("/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0", 16, "solar"),
    )
    assert parse_serial_meters("") == ()
    assert parse_serial_meters("/dev/ttyUSB0:248=only") == (
        SerialMeter("/dev/ttyUSB0", 248, "only"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mains", "is not port:address=sensor"),
        ("/dev/ttyUSB0=mains", "is not port:address=sensor"),
        ("/dev/ttyUSB0:1", "is not port:address=sensor"),
        (":1=mains", "is not port:address=sensor"),
        ("/dev/ttyUSB0:1=", "sensor name must not be empty"),
        ("/dev/ttyUSB0:one=mains", "'one' is not a number"),
        ("/dev/ttyUSB0:0=mains", "not in 1..247"),
        ("/dev/ttyUSB0:249=mains", "not in 1..247"),
        ("/dev/ttyUSB0:1=a,/dev/ttyUSB1:1=a", "sensor 'a' is configured twice"),
        ("/dev/ttyUSB0:1=a,/dev/ttyUSB0:0x01=b", "address 1 is used twice"),
        ("/dev/ttyUSB0:248=a,/dev/ttyUSB0:2=b", "general address 248 with other meters"),
    ],
)
def test_parse_rejects_bad_settings_clearly(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_serial_meters(text)
    assert "ENERGYMON_SERIAL_METERS" in str(caught.value)


# --- polling ---------------------------------------------------------------------------------


class Sink:
    """Records what it is handed; refuses while `refusing` is set."""

    def __init__(self) -> None:
        self.submissions: list[Submission] = []
        self.refusing = False

    def __call__(self, submission: Submission) -> None:
        if self.refusing:
            raise SpoolFullError("spool full")
        self.submissions.append(submission)

    @property
    def batches(self) -> list[list[Candidate]]:
        """The candidates of each submission that carried readings (not the heartbeats)."""
        return [list(s.readings) for s in self.submissions if s.readings]


START_MS = ManualClock().now_ms()


def candidates(readings: Sequence[Reading]) -> list[Candidate]:
    """What the store is handed for readings timed by the poller: offsets from its start."""
    return [
        Candidate.of_measurement(r.seq, r.time_ms - START_MS, r.sensor, r.measurement)
        for r in readings
    ]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def lines(clock: ManualClock) -> Iterator[tuple[PzemEmulator, str, PzemEmulator, str]]:
    """Two serial lines: meters 1 and 2 on the first, meter 1 on the second."""
    first = PzemEmulator((1, 2), seed=1, clock=clock)
    second = PzemEmulator((1,), seed=2, clock=clock)
    with PtyServer(first) as a, PtyServer(second) as b:
        yield first, a.path, second, b.path


def make_poller(
    meters: str, clock: ManualClock, sink: Sink, max_pending: int = 3600
) -> SerialPoller:
    return SerialPoller(
        parse_serial_meters(meters),
        device="pi",
        boot=4,
        sink=sink,
        timeout_s=TIMEOUT_S,
        max_pending=max_pending,
        clock=clock,
    )


def test_readings_are_numbered_across_meters_and_ports(
    lines: tuple[PzemEmulator, str, PzemEmulator, str], clock: ManualClock
) -> None:
    first, a, second, b = lines
    sink = Sink()
    poller = make_poller(f"{a}:1=mains,{a}:2=heatpump,{b}:1=garage", clock, sink)
    try:
        result = poller.run_once()
        clock.advance(1)
        again = poller.run_once()
    finally:
        poller.close()
    assert not result.failures
    assert [(r.sensor, r.seq) for r in result.readings] == [
        ("mains", 1),
        ("heatpump", 2),
        ("garage", 3),
    ]
    assert [r.seq for r in again.readings] == [4, 5, 6]
    first_reading = result.readings[0]
    assert (first_reading.device, first_reading.boot) == ("pi", 4)
    assert first_reading.time_ms == ManualClock().now_ms()
    assert again.readings[0].time_ms == first_reading.time_ms + 1000
    assert again.readings[2].measurement == second.measurement(1).to_measurement()
    assert sink.batches == [candidates(result.readings), candidates(again.readings)]
    # Each proposes the anchor its uptime and the wall clock give at sending.
    assert [s.anchor_ms + s.uptime_ms for s in sink.submissions] == [START_MS, START_MS + 1000]
    assert all((s.device, s.boot) == ("pi", 4) for s in sink.submissions)
    assert len({s.boot_nonce for s in sink.submissions}) == 1
    # Meters read in one tick still get uptimes that grow with seq.
    assert [r.time_ms - START_MS for r in result.readings] == [0, 1, 2]
    assert (result.delivered, result.pending, result.dropped) == (3, 0, 0)
    assert first.addresses == (1, 2)


def test_a_missing_meter_is_a_failure_not_zeros(
    lines: tuple[PzemEmulator, str, PzemEmulator, str],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, a, _, _ = lines
    first.add_fault(Fault(FaultKind.NO_REPLY, address=2))
    sink = Sink()
    poller = make_poller(f"{a}:1=mains,{a}:2=heatpump,{a}:3=nothing", clock, sink)
    try:
        with caplog.at_level(logging.INFO, logger="collector.serial_poll"):
            results = [poller.run_once() for _ in range(3)]
            first.clear_faults()
            recovered = poller.run_once()
    finally:
        poller.close()
    assert [r.sensor for r in results[0].readings] == ["mains"]
    assert [(f.sensor, f.kind) for f in results[0].failures] == [
        ("heatpump", "MeterTimeoutError"),
        ("nothing", "MeterTimeoutError"),
    ]
    assert [r.seq for r in results[2].readings] == [3]
    assert [r.sensor for r in recovered.readings] == ["mains", "heatpump"]
    assert poller.meter_errors == {"mains": 0, "heatpump": 3, "nothing": 4}
    # One line when a meter stops answering and one when it is back, not one per poll.
    failing_lines = [r for r in caplog.records if "failed:" in r.getMessage()]
    assert len(failing_lines) == 2
    assert any("heatpump answers again after 3" in r.getMessage() for r in caplog.records)


def test_bad_crc_and_missing_port_are_reported(
    lines: tuple[PzemEmulator, str, PzemEmulator, str], clock: ManualClock
) -> None:
    first, a, _, _ = lines
    first.add_fault(Fault(FaultKind.BAD_CRC, address=1))
    poller = make_poller(f"{a}:1=mains,/dev/nonexistent-pzem:1=ghost", clock, Sink())
    try:
        result = poller.run_once()
    finally:
        poller.close()
    assert [(f.sensor, f.kind) for f in result.failures] == [
        ("mains", "CrcMismatchError"),
        ("ghost", "SerialLinkError"),
    ]
    assert "cannot open serial port" in result.failures[1].reason
    assert result.readings == ()


def test_refused_readings_wait_and_go_first(
    lines: tuple[PzemEmulator, str, PzemEmulator, str],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, a, _, b = lines
    sink = Sink()
    poller = make_poller(f"{a}:1=mains,{b}:1=garage", clock, sink, max_pending=5)
    sink.refusing = True
    try:
        with caplog.at_level(logging.INFO, logger="collector.serial_poll"):
            refused = [poller.run_once() for _ in range(4)]
            sink.refusing = False
            accepted = poller.run_once()
    finally:
        poller.close()
    assert [(r.pending, r.dropped, r.delivered) for r in refused] == [
        (2, 0, 0),
        (4, 0, 0),
        (5, 1, 0),
        (5, 2, 0),
    ]
    assert poller.dropped == 3
    assert accepted.delivered == 7
    assert accepted.pending == 0
    # The oldest were dropped; what was kept goes first, in order.
    assert [r.seq for r in sink.batches[0]] == [4, 5, 6, 7, 8, 9, 10]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("readings refused (" in m for m in messages) == 1
    assert sum("dropping the oldest" in m for m in messages) == 1
    assert any("accepted again; 3 were dropped" in m for m in messages)


def test_impossible_measurements_are_handed_on(clock: ManualClock) -> None:
    # A sag far below the meter's range: the pipeline, not the poller, quarantines it.
    emulator = PzemEmulator((1,), clock=clock, sag_voltage_v=50.0)
    emulator.add_fault(Fault(FaultKind.SAG))
    sink = Sink()
    with PtyServer(emulator) as server:
        poller = make_poller(f"{server.path}:1=mains", clock, sink)
        try:
            result = poller.run_once()
        finally:
            poller.close()
    (reading,) = result.readings
    assert reading.measurement.voltage_v == 50.0
    assert reading.measurement.problem() is not None
    assert sink.batches == [candidates([reading])]
    (candidate,) = sink.batches[0]
    assert candidate.measurement is None and candidate.problem == reading.measurement.problem()


def test_run_polls_until_stopped(
    lines: tuple[PzemEmulator, str, PzemEmulator, str], clock: ManualClock
) -> None:
    _, a, _, _ = lines
    stop = threading.Event()
    received: list[Candidate] = []

    def sink(submission: Submission) -> None:
        received.extend(submission.readings)
        if len(received) >= 3:
            stop.set()

    poller = SerialPoller(
        parse_serial_meters(f"{a}:1=mains"),
        device="pi",
        boot=1,
        sink=sink,
        timeout_s=TIMEOUT_S,
        interval_s=0.0,
        clock=clock,
    )
    poller.run(stop)
    assert [r.seq for r in received] == [1, 2, 3]


def test_from_settings() -> None:
    settings = load_settings(
        serial_meters="/dev/ttyUSB0:1=mains",
        serial_device="pi-hall",
        serial_poll_interval_s=2.0,
        serial_timeout_s=0.3,
    )
    poller = SerialPoller.from_settings(settings, boot=9, sink=Sink())
    assert poller.meters == (SerialMeter("/dev/ttyUSB0", 1, "mains"),)
    assert poller.interval_s == 2.0
    assert poller.next_seq == 1


def test_silent_meters_still_report_their_errors(clock: ManualClock) -> None:
    # With no reading at all, a heartbeat carries the errors, so health shows the dead bus.
    sink = Sink()
    poller = make_poller("/dev/nonexistent-pzem:1=ghost", clock, sink)
    try:
        poller.run_once()
        poller.run_once()
    finally:
        poller.close()
    assert sink.batches == []
    assert [dict(s.meter_errors) for s in sink.submissions] == [{"ghost": 1}, {"ghost": 2}]


def test_the_poller_thread_survives_an_unforeseen_error(
    lines: tuple[PzemEmulator, str, PzemEmulator, str],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sink failing with an error nobody foresaw (not an EnergymonError) is logged once and
    shown as a fault; the thread goes on polling after its back-off."""
    _, a, _, _ = lines
    delivered = Sink()
    calls = []

    def breaking(submission: Submission) -> None:
        calls.append(submission)
        if len(calls) <= 2:
            raise RuntimeError("the bridge broke")
        delivered(submission)

    poller = SerialPoller(
        parse_serial_meters(f"{a}:1=mains"),
        device="pi",
        boot=4,
        sink=breaking,
        timeout_s=TIMEOUT_S,
        clock=clock,
    )
    faults = Faults()
    boundary = ErrorBoundary("serial poller", faults, clock, base_s=0.05, cap_s=0.05)
    poller.interval_s = 0.01
    stop = threading.Event()
    caplog.set_level(logging.ERROR, logger="energymon.boundary")
    thread = threading.Thread(target=poller.run, args=(stop, boundary), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(faults.current()), lambda n: n == 1)
        assert thread.is_alive()
        assert "the bridge broke" in faults.current()[0].reason
        clock.advance(0.05)
        wait_for(lambda: boundary.failures, lambda n: n == 2)
        clock.advance(0.05)
        wait_for(lambda: len(delivered.submissions), lambda n: n > 0)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert faults.current() == ()
    assert len([r for r in caplog.records if "serial poller" in r.getMessage()]) == 1
