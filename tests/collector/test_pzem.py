"""The PZEM-004T driver against the emulator on a real pseudo-terminal."""

from __future__ import annotations

import logging
import os
import select
import time
from collections.abc import Iterator

import pytest

from collector.pzem import PzemBus, SerialLinkError
from energymon import modbus
from energymon.clock import ManualClock
from energymon.errors import MeterTimeoutError
from energymon.modbus import CrcMismatchError, V1ProtocolError
from simulator.meter import Fault, FaultKind, PtyServer, PzemEmulator

TIMEOUT_S = 0.05


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> PzemEmulator:
    return PzemEmulator((1, 2), seed=7, clock=clock)


@pytest.fixture
def bus(emulator: PzemEmulator) -> Iterator[PzemBus]:
    with PtyServer(emulator) as server, PzemBus(server.path, TIMEOUT_S) as bus:
        yield bus


def test_read_returns_the_meters_registers(bus: PzemBus, emulator: PzemEmulator) -> None:
    for address in (1, 2):
        raw = bus.read(address)
        assert raw == emulator.measurement(address)
        assert raw.power_dw > 0
        assert raw.to_measurement().problem() is None


def test_values_above_one_register_come_through(clock: ManualClock) -> None:
    emulator = PzemEmulator((1,), start_energy_wh=1_234_567, clock=clock)
    with PtyServer(emulator) as server, PzemBus(server.path, TIMEOUT_S) as bus:
        assert bus.read(1).energy_wh == 1_234_567


def test_reset_energy(bus: PzemBus, emulator: PzemEmulator, clock: ManualClock) -> None:
    clock.advance(600)
    assert bus.read(1).energy_wh > 0
    bus.reset_energy(1)
    assert bus.read(1).energy_wh == 0
    assert bus.read(2).energy_wh > 0
    clock.advance(600)
    assert bus.read(1).energy_wh > 0


def test_alarm_threshold(bus: PzemBus) -> None:
    assert bus.read_alarm_threshold(1) == 2300
    bus.set_alarm_threshold(1, 1)
    assert bus.read_alarm_threshold(1) == 1
    assert bus.read(1).alarm
    bus.set_alarm_threshold(1, 0xFFFF)
    assert not bus.read(1).alarm


def test_set_address_takes_effect(bus: PzemBus) -> None:
    bus.set_address(2, 7)
    assert bus.read(7).voltage_dv > 0
    with pytest.raises(MeterTimeoutError):
        bus.read(2)


def test_set_address_through_general_address_warns(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = PzemEmulator((5,), clock=clock)
    with PtyServer(emulator) as server, PzemBus(server.path, TIMEOUT_S) as bus:
        with caplog.at_level(logging.WARNING, logger="collector.pzem"):
            bus.set_address(modbus.GENERAL_ADDRESS, 9)
        assert "only one module" in caplog.text
        assert emulator.addresses == (9,)
        assert bus.read(9).voltage_dv > 0


def test_no_reply_is_a_timeout_not_zeros(bus: PzemBus, emulator: PzemEmulator) -> None:
    emulator.add_fault(Fault(FaultKind.NO_REPLY, address=1))
    started = time.monotonic()
    with pytest.raises(MeterTimeoutError, match="did not answer"):
        bus.read(1)
    assert time.monotonic() - started < 1.0
    assert bus.read(2).voltage_dv > 0


def test_bad_crc_is_detected(bus: PzemBus, emulator: PzemEmulator) -> None:
    emulator.add_fault(Fault(FaultKind.BAD_CRC, address=1))
    with pytest.raises(CrcMismatchError):
        bus.read(1)
    with pytest.raises(CrcMismatchError):
        bus.reset_energy(1)
    emulator.clear_faults()
    # The broken reply left nothing behind that spoils the next exchange.
    assert bus.read(1).voltage_dv > 0


def test_v1_board_is_named(bus: PzemBus, emulator: PzemEmulator) -> None:
    emulator.add_fault(Fault(FaultKind.V1))
    with pytest.raises(V1ProtocolError, match="v1 protocol"):
        bus.read(1)


def test_stale_bytes_are_flushed_before_a_request(clock: ManualClock) -> None:
    emulator = PzemEmulator((1, 2), clock=clock)
    with PtyServer(emulator) as server, PzemBus(server.path, TIMEOUT_S) as bus:
        # A late reply of meter 2 waiting in the input buffer must not pass for meter 1's.
        late = modbus.read_reply(
            2, modbus.READ_INPUT, modbus.encode_measurement(emulator.measurement(2))
        )
        server.send_unasked(late)
        fd = os.open(server.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            readable, _, _ = select.select([fd], [], [], 1.0)
        finally:
            os.close(fd)
        assert readable
        assert bus.read(1) == emulator.measurement(1)


def test_missing_port_is_a_link_error() -> None:
    with pytest.raises(SerialLinkError, match="cannot open serial port"):
        PzemBus("/dev/nonexistent-pzem-port", TIMEOUT_S)


def test_addresses_are_checked(bus: PzemBus) -> None:
    with pytest.raises(ValueError, match="not in"):
        bus.read(0)
    with pytest.raises(ValueError, match="not in"):
        bus.set_address(1, modbus.GENERAL_ADDRESS)
