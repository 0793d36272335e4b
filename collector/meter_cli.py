"""`energymon meter ...`: read and configure a PZEM-004T v3 on a serial port by hand."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from collector.pzem import PzemBus
from energymon import modbus
from energymon.schema import FIELDS

_DEFAULT_TIMEOUT_S = 0.5


def _address(text: str) -> int:
    """A meter address from the command line: 1..247, or 248 (0xF8) when typed explicitly."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= modbus.GENERAL_ADDRESS:
        raise argparse.ArgumentTypeError(f"{value} is not in 1..247 (or 248, the general address)")
    return value


def _new_address(text: str) -> int:
    value = _address(text)
    if value == modbus.GENERAL_ADDRESS:
        raise argparse.ArgumentTypeError("the new address must be in 1..247")
    return value


def _watts(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of watts") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"{value} W does not fit the register (0..65535)")
    return value


def _read(args: argparse.Namespace) -> int:
    with PzemBus(args.port, args.timeout) as bus:
        measurement = bus.read(args.address).to_measurement()
    problem = measurement.problem()
    if args.json:
        print(json.dumps({"address": args.address, **asdict(measurement), "problem": problem}))
        return 0
    print(f"meter {args.address} on {args.port}")
    for field, value in zip(FIELDS, measurement.values(), strict=True):
        shown = ("on" if value else "off") if field.kind is bool else f"{value:.{field.decimals}f}"
        print(f"  {field.label:<14}{shown} {field.unit}".rstrip())
    if problem:
        print(f"  IMPOSSIBLE: {problem}")
    return 0


def _reset_energy(args: argparse.Namespace) -> int:
    with PzemBus(args.port, args.timeout) as bus:
        bus.reset_energy(args.address)
    print(f"meter {args.address} on {args.port}: energy counter reset to 0")
    return 0


def _set_alarm(args: argparse.Namespace) -> int:
    with PzemBus(args.port, args.timeout) as bus:
        bus.set_alarm_threshold(args.address, args.watts)
        confirmed_w = bus.read_alarm_threshold(args.address)
    print(f"meter {args.address} on {args.port}: power alarm threshold {confirmed_w} W")
    return 0


def _set_address(args: argparse.Namespace) -> int:
    with PzemBus(args.port, args.timeout) as bus:
        bus.set_address(args.address, args.new_address)
        # The meter must now answer on its new address.
        bus.read(args.new_address)
    print(f"meter on {args.port}: address {args.address} changed to {args.new_address}")
    return 0


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    meter = sub.add_parser("meter", help="read or configure a PZEM-004T v3 on a serial port")
    commands = meter.add_subparsers(dest="meter_command", required=True, metavar="ACTION")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
        parser.add_argument(
            "--address",
            type=_address,
            required=True,
            help="meter address 1..247; 248 (0xF8) is the general address every module "
            "answers: use it only with a single module on the line",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=_DEFAULT_TIMEOUT_S,
            help=f"seconds to wait for the reply (default {_DEFAULT_TIMEOUT_S:g})",
        )
        return parser

    read = command("read", "print one measurement")
    read.add_argument("--json", action="store_true", help="print JSON")
    read.set_defaults(handler=_read)
    command("reset-energy", "set the energy counter to 0").set_defaults(handler=_reset_energy)
    alarm = command("set-alarm", "set the power alarm threshold")
    alarm.add_argument("--watts", type=_watts, required=True, help="threshold in watts")
    alarm.set_defaults(handler=_set_alarm)
    address = command("set-address", "give the meter a new address")
    address.add_argument(
        "--new-address", type=_new_address, required=True, help="the new address, 1..247"
    )
    address.set_defaults(handler=_set_address)
