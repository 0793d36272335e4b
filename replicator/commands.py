"""What `energymon replicator ...` and `energymon cloud ...` do; their arguments are in
`replicator.cli`."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import threading
from contextlib import closing
from datetime import UTC, datetime
from types import FrameType

from energymon.clients import cloud_influx
from energymon.clock import SystemClock, iso_ms
from energymon.errors import ConfigError, InfluxRejectedError
from energymon.lockfile import ProcessLock
from energymon.logs import setup_logging
from energymon.settings import Settings, load_settings
from replicator.cloud_admin import add_home, admin_client
from replicator.deadletters import DeadLetter, DeadLetterStore
from replicator.health import HealthServer
from replicator.points import TimeRange, earliest_of
from replicator.progress import ProgressBar
from replicator.restore import Restorer
from replicator.service import (
    build_service,
    dead_letter_store,
    local_client,
    sink_to,
    state_dir,
)
from replicator.state import StateStore
from replicator.verify import DAY_MS, VerifyResult, verify

log = logging.getLogger(__name__)

_RELATIVE = re.compile(r"^(\d+)([dh])$")


def parse_since(value: str, now_ms: int) -> int:
    """`2025-01-31`, `2025-01-31T12:00` (UTC unless it says otherwise), `7d` or `12h` ago."""
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = int(match[1]), match[2]
        return now_ms - amount * (DAY_MS if unit == "d" else DAY_MS // 24)
    try:
        return iso_ms(value)
    except ValueError as exc:
        raise ConfigError(f"--since {value!r} is neither a date nor like 7d or 12h") from exc


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    setup_logging(settings)
    if not settings.cloud_url:
        raise ConfigError("ENERGYMON_CLOUD_URL is not set: there is no cloud to replicate to")
    if not settings.cloud_db:
        raise ConfigError(
            "ENERGYMON_CLOUD_DB is not set: the home's own cloud database "
            "(printed by `energymon cloud add-home NAME`)"
        )
    return settings


def run_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    lock = ProcessLock(state_dir(settings) / "replicator.lock", "replicator")
    lock.acquire()
    service = build_service(settings, SystemClock())
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = None
    if settings.replicator_listen_address is not None:
        host, port = settings.replicator_listen_address
        server = HealthServer(host, port, service.health)
        server.start()
    log.info(
        "replicating home %s from %r to %r", settings.home, service.local, service.replicator.cloud
    )
    try:
        service.run_forever(stop)
    finally:
        if server is not None:
            server.stop()
        service.close()
    log.info("replicator stopped")
    return 0


def _print_verify(result: VerifyResult, repaired: bool) -> None:
    if result.ok:
        print(f"all {result.hours} hours match")
        return
    header = f"{'hour (UTC)':<17} {'measurement':<22} {'series':<30} {'local':>8} {'cloud':>8}"
    print(header + "  detail")
    for m in result.mismatches:
        hour = datetime.fromtimestamp(m.hour_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        print(
            f"{hour:<17} {m.measurement:<22} {m.series[:30]:<30} "
            f"{m.local_points:>8} {m.cloud_points:>8}  {m.detail}"
        )
    hours = len(result.mismatched_hours())
    print(f"{hours} of {result.hours} hours differ", end="")
    if repaired:
        print(f"; {result.repaired_hours} repaired, {result.unresolved_hours} still different")
    else:
        print("; run with --repair to copy them again")


def verify_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    clock = SystemClock()
    now = clock.now_ms()
    state = StateStore(state_dir(settings) / "state.json").load()
    # Hours after the watermark are not replicated yet: they would all differ.
    until = now if state is None else min(now, state.watermark_ms)
    default_since = until - settings.replicator_verify_days * DAY_MS
    since = parse_since(args.since, now) if args.since else default_since
    local, cloud = local_client(settings), cloud_influx(settings)
    if args.all:
        since = earliest_of((local, cloud), settings.home, 0) or until
    sink = sink_to(settings, cloud, "cloud", clock)
    bar = ProgressBar("verify")
    with closing(sink.dead_letters):
        result = verify(
            local,
            cloud,
            sink,
            settings.home,
            TimeRange(since, until),
            repair=args.repair,
            progress=lambda done, total: bar.update(done / total, f"{done}/{total} days"),
        )
    bar.done()
    _print_verify(result, args.repair)
    return 0 if result.ok or (args.repair and result.unresolved_hours == 0) else 1


def restore_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    clock = SystemClock()
    local, cloud = local_client(settings), cloud_influx(settings)
    sink = sink_to(settings, local, "local", clock)
    with closing(sink.dead_letters):
        restorer = Restorer(
            cloud=cloud,
            sink=sink,
            state_path=state_dir(settings) / "restore.json",
            clock=clock,
            home=settings.home,
            window_ms=round(settings.replicator_window_s * 1000),
            overwrite=args.overwrite,
        )
        plan = restorer.plan(parse_since(args.since, clock.now_ms()) if args.since else None)
        bar = ProgressBar("restore")
        while not plan.done:
            plan = restorer.run_once(plan)
            day = datetime.fromtimestamp(plan.position_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
            bar.update(plan.fraction, f"up to {day}, {restorer.copied_points} points")
    bar.done()
    print(
        f"restored {restorer.copied_points} points of home {settings.home}; "
        f"{sink.stats.dead_letters} refused (see `energymon replicator dead-letters list`)"
    )
    return _print_conflicts(restorer, args.overwrite)


def _print_conflicts(restorer: Restorer, overwrite: bool) -> int:
    if not restorer.conflict_count:
        return 0
    for c in restorer.conflicts:
        when = datetime.fromtimestamp(c.time_ms / 1000, UTC).isoformat(timespec="milliseconds")
        series = ",".join(f"{k}={v}" for k, v in c.tags)
        print(f"{when} {c.measurement},{series}: local {c.local}, cloud {c.cloud}")
    if overwrite:
        print(f"{restorer.conflict_count} local points differed and now hold the cloud's values")
        return 0
    print(
        f"{restorer.conflict_count} local points differ from the cloud and were kept; "
        "run with --overwrite to take the cloud's values"
    )
    return 1


def dead_letters_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with closing(dead_letter_store(settings)) as store:
        return _dead_letter_action(args, settings, store)


def _dead_letter_action(
    args: argparse.Namespace, settings: Settings, store: DeadLetterStore
) -> int:
    if args.action == "list":
        letters = store.list(limit=args.limit)
        for letter in letters:
            when = datetime.fromtimestamp(letter.created_ms / 1000, UTC)
            print(f"#{letter.id} {when:%Y-%m-%d %H:%M:%S} -> {letter.target}: {letter.reason}")
            print(f"    {letter.line}")
        print(f"{store.count()} dead letters")
        return 0
    if args.id is None and args.action == "discard":
        raise ConfigError("discard needs the ID of a dead letter")
    letters_iter: list[DeadLetter] | None = None
    if args.id is not None:
        found = store.get(args.id)
        if found is None:
            raise ConfigError(f"there is no dead letter #{args.id}")
        letters_iter = [found]
    if args.action == "discard":
        store.remove(args.id)
        log.warning("dead letter #%d discarded by the operator", args.id)
        print(f"discarded #{args.id}")
        return 0
    return _replay(settings, store, letters_iter)


def _replay(settings: Settings, store: DeadLetterStore, letters: list[DeadLetter] | None) -> int:
    clients = {"cloud": cloud_influx(settings), "local": local_client(settings)}
    replayed = refused = 0
    for letter in letters if letters is not None else list(store.iter_all()):
        if not letter.replayable:
            refused += 1
            print(f"#{letter.id} is not line protocol; fix the stored point, then discard it")
            continue
        try:
            clients[letter.target].write([letter.line])
        except InfluxRejectedError as exc:
            store.update_reason(letter.id, str(exc))
            refused += 1
            print(f"#{letter.id} refused again: {exc.message}")
            continue
        store.remove(letter.id)
        replayed += 1
    print(f"{replayed} replayed, {refused} still refused")
    return 0 if refused == 0 else 1


def add_home_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    setup_logging(settings)
    admin = admin_client(settings)
    try:
        access = add_home(admin, args.name)
    finally:
        admin.close()
    print(
        f"# home {access.home}: database {access.database}, user {access.username} "
        "(ALL on that database only). Paste into the Pi's env file:"
    )
    print("\n".join(access.env_lines(settings.cloud_url)))
    print(
        f"# Grafana's user {access.grafana_username} (READ on that database only), for the "
        "data source of the home's Grafana organisation (docker/.env or grafana.ini):"
    )
    print("\n".join(access.grafana_lines()))
    return 0
