"""`energymon simulate meter`: PZEM-004T v3 emulators on a pseudo-terminal, until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from energymon.errors import ConfigError
from simulator.meter import DEFAULT_SAG_VOLTAGE_V, FaultKind, PtyServer, PzemEmulator, parse_fault


def _addresses(text: str) -> list[int]:
    try:
        return [int(part, 0) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1,2,3") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--addresses",
        type=_addresses,
        default=[1],
        help="comma-separated addresses of the meters sharing the line (default 1)",
    )
    parser.add_argument(
        "--link", type=Path, help="also make this symbolic link to the pty (e.g. /tmp/ttyPZEM)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the household loads")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)"
    )
    parser.add_argument(
        "--start-hour",
        type=float,
        default=0.0,
        help="simulated time of day at start, in hours after midnight (default 0)",
    )
    parser.add_argument(
        "--sag-voltage",
        type=float,
        default=DEFAULT_SAG_VOLTAGE_V,
        help=f"voltage during a sag fault (default {DEFAULT_SAG_VOLTAGE_V:g} V)",
    )
    kinds = ", ".join(k.value for k in FaultKind)
    parser.add_argument(
        "--fault",
        action="extend",
        nargs="+",
        default=[],
        metavar="KIND[@ADDRESS][:START[-END]]",
        help=f"inject a fault ({kinds}) on one meter or all, during simulated seconds "
        "START..END (default: always; an energy reset happens once at START); "
        "e.g. sag@2:60-90 no-reply@3",
    )


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.start_hour < 24:
        raise ConfigError("--start-hour must be in 0..24")
    emulator = PzemEmulator(
        args.addresses,
        seed=args.seed,
        speed=args.speed,
        start_s=args.start_hour * 3600,
        faults=[parse_fault(text) for text in args.fault],
        sag_voltage_v=args.sag_voltage,
    )
    server = PtyServer(emulator, link=args.link)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # `kill` and `docker stop` end it as cleanly as Ctrl-C: the link is removed.
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    path = server.start()
    try:
        print(path, flush=True)
        addresses = ",".join(str(a) for a in emulator.addresses)
        print(
            f"PZEM-004T emulator, addresses {addresses}; try: energymon meter read "
            f"--port {path} --address {emulator.addresses[0]}   (Ctrl-C stops)",
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
    return 0
