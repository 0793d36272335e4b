"""`energymon grafana ...`: the Grafana files as code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from energymon_grafana import DEFAULT_CURRENCY

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"


def _build(args: argparse.Namespace) -> int:
    # The SDK is loaded by this command only, not by every `energymon` command.
    from energymon_grafana.render import Options, stale, write

    options = Options(currency=args.currency)
    if args.check:
        different = stale(args.out, options)
        for name in different:
            print(f"{args.out / name} differs from the generated dashboard", file=sys.stderr)
        return 1 if different else 0
    for path in write(args.out, options):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    grafana = subparsers.add_parser("grafana", help="Grafana dashboards and provisioning as code")
    sub = grafana.add_subparsers(dest="grafana_command", required=True, metavar="COMMAND")
    build = sub.add_parser(
        "build",
        help="regenerate grafana/dashboards/*.json from energymon_grafana",
        description="Regenerate the dashboards from energymon_grafana. The committed files use "
        "the defaults; --currency changes the unit of the cost panels for your own copy.",
    )
    build.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="directory of the JSON")
    build.add_argument(
        "--currency", default=DEFAULT_CURRENCY, help="currency shown on the cost panels"
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a file differs from the generated one",
    )
    build.set_defaults(handler=_build)
