"""`energymon demo`: the whole installation on this machine, with an internet to cut."""

from __future__ import annotations

import argparse


def _demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    return run_demo(args.speed, args.seconds, args.cut_at, args.restore_at)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo", help="a local and a cloud InfluxDB, collector, replicator and three fake meters"
    )
    demo.add_argument("--speed", type=float, default=1.0, help="device seconds per real second")
    demo.add_argument("--seconds", type=float, help="stop after this many seconds")
    demo.add_argument("--cut-at", type=float, help="cut the internet after this many seconds")
    demo.add_argument("--restore-at", type=float, help="restore it after this many seconds")
    demo.set_defaults(handler=_demo)
