"""Wires the collector together: state, store, group committer, HTTP app, background loops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from collector import integrity, meters
from collector.app import ApiConfig, build_app
from collector.committer import GIL_SWITCH_INTERVAL_S, GroupCommitter
from collector.health import HealthReporter
from collector.maintenance import Maintenance
from collector.rollup import RollupConfig, RollupWorker, backlog_pause_s
from collector.serial_bridge import SerialBridge
from collector.serial_poll import SerialMeter, SerialPoller, parse_serial_meters
from collector.statedb import StateDB
from collector.store import DurableStore
from collector.tally import SpoolTally
from collector.watch import Watch
from energymon.boundary import ErrorBoundary
from energymon.clients import local_influx
from energymon.clock import Clock, SystemClock
from energymon.errors import ConfigError, StoreError
from energymon.lockfile import ProcessLock
from energymon.settings import Settings

log = logging.getLogger(__name__)


class CollectorService:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.lock = ProcessLock(settings.data_dir / "collector.lock", "collector")
        self.lock.acquire()
        tally = SpoolTally(settings.data_dir)
        try:
            self.db = StateDB(settings.data_dir)
        except StoreError as exc:
            self.lock.release()
            raise integrity.refusal(tally, str(exc)) from exc
        self.store = DurableStore(
            self.db,
            local_influx(settings),
            home=settings.home,
            spool_max_bytes=settings.spool_max_bytes,
            clock=self.clock,
            write_timeout_s=settings.influx_timeout_s,
        )
        try:
            integrity.apply(self.db, self.store.spool, tally, self.clock.now_ms())
        except StoreError:
            self.db.close()
            self.lock.release()
            raise
        self.committer = GroupCommitter(self.store, settings.commit_max_lines)
        self.watch = Watch()
        # Its own client: its queries run on its own thread, beside the store's writes.
        self.rollups = RollupWorker(
            self.db,
            local_influx(settings),
            RollupConfig.from_settings(settings),
            self.clock,
            self.watch,
        )
        meter_report = meters.MeterReport(settings, settings.home_layout(), self.clock.now_ms())
        self.maintenance = Maintenance(
            self.store,
            HealthReporter(
                self.store,
                self.clock,
                settings.health_interval_s,
                self.watch,
                extra=lambda health: meter_report.lines(
                    meters.known(self.db), health.devices, health.now_ms
                ),
            ),
            self.clock,
            drain_batch_points=settings.commit_max_lines,
            journal_retention_s=settings.journal_retention_days * 86400,
            watch=self.watch,
        )
        self.device_keys = settings.device_key_table()
        # Parsed now, so a wrong setting stops the collector before it listens.
        self.serial_meters: tuple[SerialMeter, ...] = parse_serial_meters(settings.serial_meters)
        self.app = build_app(
            self.committer,
            self.clock,
            ApiConfig(
                self.device_keys,
                settings.max_body_bytes,
                settings.max_readings_per_request,
                settings.max_inflight_bytes,
                settings.inflight_device_share,
                settings.body_read_timeout_s,
            ),
            lifespan=self.lifespan,
            watch=self.watch,
        )

    async def _maintain(self) -> None:
        # Each part of a step has its own boundary inside `Maintenance`; this one keeps the
        # loop itself alive should handing the step to the store's thread fail.
        boundary = ErrorBoundary("maintenance loop", self.watch.faults, self.clock)
        while True:
            step = await self.committer.call(lambda: boundary.run(self.maintenance.run_once))
            pause_s = boundary.retry_in_s if step is None else self.maintenance.pause_s(step)
            await asyncio.sleep(pause_s)

    async def _roll_up(self, stop: asyncio.Event) -> None:
        """The rollup worker's loop, on a thread of its own so that its queries never hold up
        a group commit; its failures go through its error boundary into `/health`."""
        boundary = ErrorBoundary("rollup", self.watch.faults, self.clock)
        while not stop.is_set():
            started_s = self.clock.monotonic()
            step = await asyncio.to_thread(boundary.run, self.rollups.run_once)
            if step is not None and step.more_work:
                pause_s = backlog_pause_s(self.clock.monotonic() - started_s)
            elif step is None and boundary.failures:
                pause_s = boundary.retry_in_s
            else:
                pause_s = self.settings.rollup_interval_s
            if self.watch.rollup is not None:
                # Health judges the worker stuck by when its next step is due.
                self.watch.rollup.pause_s = pause_s
            # A step in progress is let finish: the state database closes after it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause_s)

    async def _serial_poller(self) -> SerialPoller:
        boot = await self.committer.call(lambda: self.db.next_counter("serial_boot"))
        return SerialPoller.from_settings(
            self.settings,
            boot=boot,
            sink=SerialBridge(self.committer, asyncio.get_running_loop()),
            clock=self.clock,
        )

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        committing = asyncio.create_task(self.committer.run(), name="group-commit")
        maintaining = asyncio.create_task(self._maintain(), name="maintenance")
        stop_rollups = asyncio.Event()
        rolling_up = asyncio.create_task(self._roll_up(stop_rollups), name="rollup")
        stop_polling = threading.Event()
        polling = None
        if self.serial_meters:
            poller = await self._serial_poller()
            boundary = ErrorBoundary("serial poller", self.watch.faults, self.clock)
            polling = threading.Thread(
                target=poller.run,
                args=(stop_polling, boundary),
                name="serial-poller",
                daemon=True,
            )
            polling.start()
            log.info(
                "polling %d serial meters as device %r, boot %d",
                len(self.serial_meters),
                self.settings.serial_device_name,
                poller.boot,
            )
        log.info(
            "collector for home %r: InfluxDB %s, database %r, %d device keys, spool %d points",
            self.settings.home,
            self.settings.influx_url,
            self.settings.influx_db,
            len(self.device_keys),
            self.store.spool.depth_points,
        )
        try:
            yield
        finally:
            stop_polling.set()
            if polling is not None:
                # The poller may be waiting for a commit: let the loop serve it meanwhile.
                await asyncio.to_thread(polling.join)
            maintaining.cancel()
            stop_rollups.set()
            await rolling_up
            self.rollups.influx.close()
            await self.committer.stop()
            await committing
            self.committer.shutdown_executor()
            # Its connections of the event loop's are closed by the loop, while it runs.
            self.store.influx.close()
            self.db.close()
            self.lock.release()
            log.info("collector stopped; spool holds %d points", self.store.spool.depth_points)


def serve(settings: Settings) -> None:
    import uvicorn

    # A request passes between the event loop, the store's thread and a writer thread; while
    # one of them computes, another waiting for the interpreter lock would otherwise wait out
    # the whole default switch interval at every hand-off.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    listening = _listening_socket(settings.listen_host, settings.listen_port)
    service = CollectorService(settings)
    # What is loaded by now (modules, settings, the app) lives as long as the process: out of
    # the collector's reach, a full collection walks only what came after, in a fraction of the
    # time, instead of pausing the commit path for every object of every library.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        service.app,
        host=settings.listen_host,
        port=settings.listen_port,
        loop="auto",
        http="httptools",
        access_log=False,
        # The collector never uses a client's address: forwarded headers need no reading.
        proxy_headers=False,
        log_level="warning",
        lifespan="on",
    )
    log.info("listening on %s", settings.listen)
    uvicorn.Server(config).run(sockets=[listening])


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bound before anything is said or started, so a port in use is one clear error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listening = socket.socket(family, kind, proto)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} (ENERGYMON_LISTEN): {exc.strerror or exc}"
        ) from exc
    return listening
