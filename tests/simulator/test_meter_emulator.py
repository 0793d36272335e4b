"""The PZEM-004T emulator: its steppable core frame by frame, its pty, and its command."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.pzem import PzemBus
from energymon import modbus
from energymon.clock import ManualClock
from energymon.errors import ConfigError, ModbusError
from simulator import meter_cli
from simulator.meter import (
    DEFAULT_ALARM_THRESHOLD_W,
    Fault,
    FaultKind,
    PtyServer,
    PzemEmulator,
    parse_fault,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def emulator(clock: ManualClock, *addresses: int, **kwargs: Any) -> PzemEmulator:
    return PzemEmulator(addresses or (1,), clock=clock, **kwargs)


def read(em: PzemEmulator, address: int) -> tuple[int, ...]:
    request = modbus.read_request(address, modbus.READ_INPUT, 0, 10)
    reply = em.handle(request)
    assert reply is not None
    return modbus.decode_read_reply(reply, request)


def test_reads_answer_with_the_measurement(clock: ManualClock) -> None:
    em = emulator(clock, 1, 2)
    for vector, address in ((h("01 04 00 00 00 0A 70 0D"), 1), (h("02 04 00 00 00 0A 70 3E"), 2)):
        reply = em.handle(vector)
        assert reply is not None and len(reply) == 25 and reply[0] == address
        registers = modbus.decode_read_reply(reply, vector)
        assert modbus.decode_measurement(registers) == em.measurement(address)
    assert em.handle(modbus.read_request(3, modbus.READ_INPUT, 0, 10)) is None


def test_partial_register_reads(clock: ManualClock) -> None:
    em = emulator(clock)
    full = read(em, 1)
    request = modbus.read_request(1, modbus.READ_INPUT, 3, 4)
    reply = em.handle(request)
    assert reply is not None
    assert modbus.decode_read_reply(reply, request) == full[3:7]


@pytest.mark.parametrize(
    ("request_frame", "reply"),
    [
        # Vector 10: a register past the ten measurement registers.
        (modbus.read_request(1, modbus.READ_INPUT, 10, 1), h("01 84 02 C2 C1")),
        (modbus.read_request(1, modbus.READ_INPUT, 5, 6), modbus.exception_reply(1, 4, 2)),
        (modbus.read_request(1, modbus.READ_INPUT, 0, 0), modbus.exception_reply(1, 4, 3)),
        (modbus.read_request(1, modbus.READ_HOLDING, 0, 1), modbus.exception_reply(1, 3, 2)),
        (modbus.read_request(1, modbus.READ_HOLDING, 1, 3), modbus.exception_reply(1, 3, 3)),
        (modbus.write_request(1, 3, 5), modbus.exception_reply(1, 6, 2)),
        (modbus.write_request(1, modbus.ADDRESS_REGISTER, 0), modbus.exception_reply(1, 6, 3)),
        (modbus.write_request(1, modbus.ADDRESS_REGISTER, 248), modbus.exception_reply(1, 6, 3)),
        (modbus.with_crc(h("01 01 00 00 00 01")), modbus.exception_reply(1, 1, 1)),
    ],
)
def test_exception_replies(clock: ManualClock, request_frame: bytes, reply: bytes) -> None:
    assert emulator(clock).handle(request_frame) == reply


def test_frames_it_cannot_parse_get_no_reply(clock: ManualClock) -> None:
    em = emulator(clock)
    assert em.handle(h("01 04 00 00 00 0A 70 0E")) is None
    assert em.handle(b"") is None
    assert em.handle(h("01 04 00")) is None


def test_holding_registers_and_writes_echo(clock: ManualClock) -> None:
    em = emulator(clock)
    holding = modbus.read_request(1, modbus.READ_HOLDING, 1, 2)
    reply = em.handle(holding)
    assert reply is not None
    assert modbus.decode_read_reply(reply, holding) == (DEFAULT_ALARM_THRESHOLD_W, 1)
    vector_8 = h("01 06 00 01 08 FC DF 8B")
    assert em.handle(vector_8) == vector_8
    em.handle(modbus.write_request(1, modbus.ALARM_THRESHOLD_REGISTER, 1))
    assert read(em, 1)[9] == modbus.ALARM_ON
    em.handle(modbus.write_request(1, modbus.ALARM_THRESHOLD_REGISTER, 0xFFFF))
    assert read(em, 1)[9] == 0


def test_address_change_through_the_general_address(clock: ManualClock) -> None:
    em = emulator(clock, 5)
    vector_7 = h("F8 06 00 02 00 01 FD A3")
    assert em.handle(vector_7) == vector_7
    assert em.addresses == (1,)
    assert read(em, 1)
    assert em.handle(modbus.read_request(5, modbus.READ_INPUT, 0, 10)) is None


def test_general_address_with_several_meters_collides(clock: ManualClock) -> None:
    em = emulator(clock, 1, 2)
    request = h("F8 04 00 00 00 0A 64 64")
    reply = em.handle(request)
    assert reply is not None and len(reply) == 25
    with pytest.raises(modbus.CrcMismatchError, match="several modules"):
        modbus.decode_read_reply(reply, request)


def test_broadcast_writes_without_a_reply(clock: ManualClock) -> None:
    em = emulator(clock, 1, 2)
    assert em.handle(modbus.write_request(0, modbus.ALARM_THRESHOLD_REGISTER, 1)) is None
    assert read(em, 1)[9] == read(em, 2)[9] == modbus.ALARM_ON


def test_energy_counts_and_resets(clock: ManualClock) -> None:
    em = emulator(clock, 1, 2, start_s=18 * 3600)
    clock.advance(1800)
    before = em.measurement(1).energy_wh
    assert before > 0
    assert em.handle(h("01 42 80 11")) == h("01 42 80 11")
    assert em.measurement(1).energy_wh == 0
    assert em.measurement(2).energy_wh > 0
    clock.advance(1800)
    assert em.measurement(1).energy_wh > 0


def test_speed_factor(clock: ManualClock) -> None:
    em = emulator(clock, speed=60.0)
    clock.advance(10)
    assert em.elapsed_s == 600.0


def test_faults_follow_their_window(clock: ManualClock) -> None:
    em = emulator(clock, 1, 2)
    em.add_fault(Fault(FaultKind.SAG, address=2, start_s=10, end_s=20))
    em.add_fault(Fault(FaultKind.NO_REPLY, address=1, start_s=30))
    normal = em.measurement(2)
    clock.advance(15)
    sagged = em.measurement(2)
    assert sagged.voltage_dv == 1900
    assert sagged.current_ma > normal.current_ma
    assert em.measurement(1).voltage_dv > 2000
    clock.advance(10)
    assert em.measurement(2).voltage_dv > 2000
    assert em.handle(modbus.read_request(1, modbus.READ_INPUT, 0, 10)) is not None
    clock.advance(10)
    assert em.handle(modbus.read_request(1, modbus.READ_INPUT, 0, 10)) is None
    assert em.handle(modbus.read_request(2, modbus.READ_INPUT, 0, 10)) is not None


def test_energy_reset_fault_happens_once(clock: ManualClock) -> None:
    em = emulator(clock, start_s=19 * 3600)
    em.add_fault(Fault(FaultKind.ENERGY_RESET, start_s=19 * 3600 + 600))
    clock.advance(599)
    assert em.measurement(1).energy_wh > 0
    clock.advance(2)
    assert em.measurement(1).energy_wh == 0
    clock.advance(1800)
    assert em.measurement(1).energy_wh > 0


def test_bad_crc_and_v1_faults(clock: ManualClock) -> None:
    em = emulator(clock)
    request = modbus.read_request(1, modbus.READ_INPUT, 0, 10)
    em.add_fault(Fault(FaultKind.BAD_CRC))
    reply = em.handle(request)
    assert reply is not None and len(reply) == 25 and not modbus.crc_ok(reply)
    em.clear_faults()
    em.add_fault(Fault(FaultKind.V1))
    with pytest.raises(modbus.V1ProtocolError):
        modbus.decode_read_reply(em.handle(request) or b"", request)


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("sag", Fault(FaultKind.SAG)),
        ("no-reply@3", Fault(FaultKind.NO_REPLY, 3)),
        ("bad-crc@0x02:60-90", Fault(FaultKind.BAD_CRC, 2, 60.0, 90.0)),
        ("energy-reset:3600", Fault(FaultKind.ENERGY_RESET, None, 3600.0)),
    ],
)
def test_parse_fault(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault


@pytest.mark.parametrize(
    ("text", "message"),
    [("brownout", "unknown kind"), ("sag@x", "is not KIND"), ("sag:90-60", "after the start")],
)
def test_parse_fault_rejects(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_fault(text)


def test_bad_configuration_is_refused(clock: ManualClock) -> None:
    for addresses in ((), (1, 1), (0,), (248,)):
        with pytest.raises(ConfigError):
            PzemEmulator(addresses, clock=clock)
    with pytest.raises(ConfigError):
        PzemEmulator((1,), speed=0, clock=clock)


def test_pty_link_is_made_and_removed(clock: ManualClock, tmp_path: Path) -> None:
    link = tmp_path / "ttyPZEM"
    server = PtyServer(emulator(clock), link=link)
    assert server.start() == str(link)
    try:
        assert os.readlink(link) == server.path
        with PzemBus(str(link), 0.05) as bus:
            assert bus.read(1).voltage_dv > 0
    finally:
        server.stop()
    assert not link.exists() and not link.is_symlink()


def test_pty_link_never_replaces_a_file(clock: ManualClock, tmp_path: Path) -> None:
    link = tmp_path / "ttyPZEM"
    link.write_text("precious")
    server = PtyServer(emulator(clock), link=link)
    with pytest.raises(ConfigError, match="not a symbolic link"):
        server.start()
    server.stop()
    assert link.read_text() == "precious"


def test_simulate_meter_command_serves_until_terminated(tmp_path: Path) -> None:
    link = tmp_path / "ttyPZEM"
    code = (
        "import argparse, sys\n"
        "from simulator import meter_cli\n"
        "parser = argparse.ArgumentParser()\n"
        "meter_cli.add_arguments(parser)\n"
        "sys.exit(meter_cli.run(parser.parse_args(sys.argv[1:])))\n"
    )
    args = ["--addresses", "1,2", "--link", str(link), "--speed", "10", "--fault", "no-reply@2"]
    with subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == str(link)
            with PzemBus(str(link), 0.05) as bus:
                assert bus.read(1).voltage_dv > 0
                with pytest.raises(ModbusError):
                    bus.read(2)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
    assert not link.is_symlink()


def test_simulate_meter_command_rejects_a_bad_fault() -> None:
    parser = argparse.ArgumentParser()
    meter_cli.add_arguments(parser)
    with pytest.raises(ConfigError, match="unknown kind"):
        meter_cli.run(parser.parse_args(["--fault", "brownout"]))
