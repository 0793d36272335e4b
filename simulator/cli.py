"""`energymon simulate meter|device`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulator import device_cli, meter_cli

    simulate = sub.add_parser("simulate", help="run a simulated meter or device")
    kinds = simulate.add_subparsers(dest="simulated", required=True, metavar="KIND")
    meter = kinds.add_parser("meter", help="a PZEM-004T v3 emulator on a pseudo-terminal")
    meter_cli.add_arguments(meter)
    meter.set_defaults(handler=meter_cli.run)
    device = kinds.add_parser("device", help="a fake Arduino posting readings over HTTP")
    device_cli.add_arguments(device)
    device.set_defaults(handler=device_cli.run)
