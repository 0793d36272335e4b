"""`energymon replicator ...` and `energymon cloud ...`: the commands' arguments. What they do
is in `replicator.commands`, loaded only when one of them runs, so that no other `energymon`
process (a long-running collector above all) holds the replicator's modules for its life."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from replicator import commands

        run: Callable[[argparse.Namespace], int] = getattr(commands, name)
        return run(args)

    return handler


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cloud = sub.add_parser("cloud", help="administer the cloud InfluxDB (admin credentials)")
    cloud_commands = cloud.add_subparsers(dest="cloud_command", required=True)
    add = cloud_commands.add_parser(
        "add-home",
        help="create a home's database and least-privilege users (replicator, Grafana); print "
        "the Pi's and Grafana's settings",
    )
    add.add_argument("name", help="the home's name (its ENERGYMON_HOME)")
    add.set_defaults(handler=_command("add_home_command"))
    rep = sub.add_parser("replicator", help="copy this home's data to a cloud InfluxDB and back")
    commands = rep.add_subparsers(dest="replicator_command", required=True)
    commands.add_parser("run", help="replicate continuously").set_defaults(
        handler=_command("run_command")
    )
    v = commands.add_parser("verify", help="compare local and cloud per hour and series")
    v.add_argument(
        "--since",
        help="start: a date (UTC), or 7d / 12h ago; default: the last "
        "ENERGYMON_REPLICATOR_VERIFY_DAYS days",
    )
    v.add_argument("--all", action="store_true", help="the whole history (overrides --since)")
    v.add_argument("--repair", action="store_true", help="copy the mismatched hours again")
    v.set_defaults(handler=_command("verify_command"))
    r = commands.add_parser("restore", help="copy this home's data from the cloud to local")
    r.add_argument("--since", help="start: a date (UTC), or 7d / 12h ago; default: everything")
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="replace local points whose values differ from the cloud's (default: keep and list)",
    )
    r.set_defaults(handler=_command("restore_command"))
    d = commands.add_parser("dead-letters", help="points a server refused for good")
    d.add_argument("action", choices=["list", "replay", "discard"], nargs="?", default="list")
    d.add_argument("id", type=int, nargs="?", help="one dead letter (replay, discard)")
    d.add_argument("--limit", type=int, default=100, help="most letters to list")
    d.set_defaults(handler=_command("dead_letters_command"))
