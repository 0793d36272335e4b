"""`energymon meter ...` against the emulator on a real pseudo-terminal."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import pytest

from collector import meter_cli
from energymon.clock import ManualClock
from energymon.errors import MeterTimeoutError
from simulator.meter import Fault, FaultKind, PtyServer, PzemEmulator


@pytest.fixture
def emulator() -> PzemEmulator:
    return PzemEmulator((1, 2), clock=ManualClock())


@pytest.fixture
def port(emulator: PzemEmulator) -> Iterator[str]:
    with PtyServer(emulator) as server:
        yield server.path


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="energymon")
    meter_cli.add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["meter", *argv])
    code: int = args.handler(args)
    return code


def test_read_prints_the_measurement(
    port: str, emulator: PzemEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("read", "--port", port, "--address", "2", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    expected = emulator.measurement(2).to_measurement()
    assert printed["address"] == 2
    assert printed["voltage_v"] == expected.voltage_v
    assert printed["energy_wh"] == expected.energy_wh
    assert printed["problem"] is None
    assert run("read", "--port", port, "--address", "1") == 0
    assert "voltage" in capsys.readouterr().out


def test_configuration_commands(
    port: str, emulator: PzemEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("set-alarm", "--port", port, "--address", "1", "--watts", "1") == 0
    assert "threshold 1 W" in capsys.readouterr().out
    assert emulator.measurement(1).alarm
    assert run("set-address", "--port", port, "--address", "2", "--new-address", "0x20") == 0
    assert "changed to 32" in capsys.readouterr().out
    assert emulator.addresses == (1, 32)
    assert run("reset-energy", "--port", port, "--address", "32") == 0
    assert emulator.measurement(32).energy_wh == 0


def test_a_silent_meter_is_an_error(port: str, emulator: PzemEmulator) -> None:
    emulator.add_fault(Fault(FaultKind.NO_REPLY))
    with pytest.raises(MeterTimeoutError):
        run("read", "--port", port, "--address", "1", "--timeout", "0.05")


@pytest.mark.parametrize(
    "argv",
    [
        ["read", "--port", "p", "--address", "0"],
        ["read", "--port", "p", "--address", "249"],
        ["set-alarm", "--port", "p", "--address", "1", "--watts", "70000"],
        ["set-address", "--port", "p", "--address", "1", "--new-address", "248"],
    ],
)
def test_arguments_are_checked(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        run(*argv)
