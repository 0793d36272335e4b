"""`energymon collector` (the service), `energymon quarantine` (what it set aside), `energymon
parked` (what InfluxDB refused), `energymon spool-losses` (what a damaged spool lost) and,
through `collector.meter_cli`, `energymon meter`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from collector import meter_cli
from energymon.clock import iso_ms
from energymon.errors import ConfigError
from energymon.influx import quote_string
from energymon.logs import setup_logging
from energymon.schema import QUARANTINE_MEASUREMENT
from energymon.settings import load_settings


def _run(args: argparse.Namespace) -> int:
    from collector.service import serve

    settings = load_settings(args.config)
    setup_logging(settings)
    serve(settings)
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    from energymon.clients import local_influx

    settings = load_settings(args.config)
    conditions = [f"home = {quote_string(settings.home)}", f"time >= now() - {int(args.days)}d"]
    if args.device:
        conditions.append(f"device = {quote_string(args.device)}")
    q = (
        f'SELECT device, sensor, boot, seq, reason, payload FROM "{QUARANTINE_MEASUREMENT}" '
        f"WHERE {' AND '.join(conditions)} ORDER BY time DESC LIMIT {int(args.limit)}"
    )
    rows = [r for s in local_influx(settings).query(q) for r in s.records()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"nothing quarantined in the last {args.days} days")
        return 0
    for r in rows:
        where = f"{r['device']}/{r['sensor']} boot {r['boot']} seq {r['seq']}"
        print(f"{r['time']}  {where}: {r['reason']}")
        print(f"    {r['payload']}")
    return 0


def _parked(args: argparse.Namespace) -> int:
    from collector.spool import Spool
    from collector.statedb import StateDB
    from energymon.clients import local_influx

    settings = load_settings(args.config)
    db = StateDB(settings.data_dir)
    try:
        spool = Spool(db, settings.spool_max_bytes)
        batches = spool.parked()
        if args.action == "list":
            if not batches:
                print("no parked batches")
            for b in batches:
                print(f"#{b.id}  parked at {b.parked_ms}  {b.points} points: {b.reason}")
                if args.verbose:
                    print(b.body.decode("utf-8"))
            return 0
        chosen = [b for b in batches if args.id is None or b.id == args.id]
        if args.id is not None and not chosen:
            raise ConfigError(f"no parked batch #{args.id}")
        influx = local_influx(settings)
        for b in chosen:
            if args.action == "replay":
                # Raises if InfluxDB still refuses; the batch then stays parked.
                influx.write(b.body)
            spool.unpark(b)
            print(f"#{b.id}: {'replayed' if args.action == 'replay' else 'discarded'}")
        return 0
    finally:
        db.close()


def _spool_losses(args: argparse.Namespace) -> int:
    from collector import integrity
    from collector.statedb import StateDB

    settings = load_settings(args.config)
    db = StateDB(settings.data_dir)
    try:
        points, ranges = integrity.recorded_losses(db)
        if not points:
            print("no acknowledged readings were lost from the spool")
            return 0
        print(f"{points} acknowledged points lost: {integrity.describe(ranges)}")
        if args.action == "clear":
            integrity.clear_losses(db)
            print("cleared; /health no longer reports them (the collector reads this at start)")
        return 0
    finally:
        db.close()


def _iso_ms(value: str) -> int:
    try:
        return iso_ms(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from exc


def _rollup_rebuild(args: argparse.Namespace) -> int:
    from collector import rollup_rebuild
    from energymon.clients import local_influx

    settings = load_settings(args.config)
    setup_logging(settings)
    client = local_influx(settings, timeout_s=max(settings.influx_timeout_s, 60.0))
    try:
        since = (
            args.since
            if args.since is not None
            else rollup_rebuild.first_reading_ms(client, settings)
        )
        until = args.until if args.until is not None else int(time.time() * 1000) + 1
        if since is None:
            print("no readings to roll up", file=sys.stderr)
            return 0

        def progress(done: int, total: int) -> None:
            print(f"\rrollup rebuild: {done}/{total} spans", end="", file=sys.stderr, flush=True)

        points = rollup_rebuild.rebuild(client, settings, since, until, progress=progress)
        print(f"\nrollup rebuild: {points} rollup points written", file=sys.stderr)
        return 0
    finally:
        client.close()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("collector", help="run the collector service (HTTP ingest, serial meters)")
    run.set_defaults(handler=_run)
    quarantine = sub.add_parser(
        "quarantine", help="list readings set aside as invalid, with the reason"
    )
    quarantine.add_argument("--days", type=int, default=7, help="how far back (default 7)")
    quarantine.add_argument("--device", help="only this device")
    quarantine.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    quarantine.add_argument("--json", action="store_true", help="print JSON")
    quarantine.set_defaults(handler=_quarantine)
    parked = sub.add_parser(
        "parked", help="batches the local InfluxDB refused for good (type conflicts), kept safe"
    )
    parked.add_argument("action", choices=["list", "replay", "discard"])
    parked.add_argument("id", type=int, nargs="?", help="one batch (default: all)")
    parked.add_argument("-v", "--verbose", action="store_true", help="show the points")
    parked.set_defaults(handler=_parked)
    losses = sub.add_parser(
        "spool-losses", help="acknowledged readings a damaged spool lost, found at a start"
    )
    losses.add_argument("action", choices=["list", "clear"])
    losses.set_defaults(handler=_spool_losses)
    meter_cli.add_command(sub)
    rollups = sub.add_parser("rollup", help="the rollups (energymon_1m, _1h, _day, _month)")
    rollup_sub = rollups.add_subparsers(dest="rollup_command", required=True)
    rebuild = rollup_sub.add_parser(
        "rebuild", help="recompute the rollups of a time range from the raw readings"
    )
    rebuild.add_argument(
        "--since", type=_iso_ms, help="ISO 8601 start (default: the oldest reading)"
    )
    rebuild.add_argument("--until", type=_iso_ms, help="ISO 8601 end (default: now)")
    rebuild.set_defaults(handler=_rollup_rebuild)
