"""The replicator service: replication steps with back-off, health, and the checks.

`ReplicatorService.run_once()` does one step and returns how long to wait before the next, so
tests drive it with a manual clock; `run_forever()` is the only place that waits. The checks of
local against cloud (`replicator.audit`) run on a thread of their own in `run_forever()`, so
they never delay the live copy; tests step them with `auditor.run_slice()`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from energymon.backoff import Backoff
from energymon.clients import cloud_influx, local_influx
from energymon.clock import Clock
from energymon.errors import InfluxAuthError, InfluxError
from energymon.influx import InfluxClient, quote_ident, quote_string
from energymon.journal import JournalReader
from energymon.settings import Settings
from replicator.audit import AuditConfig, Auditor, AuditThread
from replicator.deadletters import DeadLetterStore
from replicator.engine import Replicator, ReplicatorConfig
from replicator.health import ReplicatorHealth, VerifySummary
from replicator.points import HOME_TAG, query
from replicator.sink import BatchSink
from replicator.state import StateStore

log = logging.getLogger(__name__)

HEALTH_INTERVAL_MS = 60_000


def state_dir(settings: Settings) -> Path:
    return settings.data_dir / "replicator"


def local_client(settings: Settings) -> InfluxClient:
    # Bulk reads: a longer timeout than the collector's writes, and uncompressed answers, which
    # cost the local server a third less CPU on the same machine.
    return local_influx(
        settings, timeout_s=max(settings.influx_timeout_s, 10.0), compress_responses=False
    )


def dead_letter_store(settings: Settings) -> DeadLetterStore:
    return DeadLetterStore(state_dir(settings) / "dead_letters.db")


def sink_to(settings: Settings, client: InfluxClient, target: str, clock: Clock) -> BatchSink:
    """Writes into `client` ("cloud" or "local"), refused points to the dead letters."""
    return BatchSink(
        client, dead_letter_store(settings), clock,
        batch_size=settings.replicator_batch_size, target=target,
    )  # fmt: skip


def backlog_points(
    local: InfluxClient, home: str, watermark_ms: int, journal: JournalReader | None, cursor: int
) -> int:
    """Points not yet copied: those after the watermark and those the journal announces behind
    it (an estimate: a journal range may hold points already copied)."""
    q = (
        f"SELECT count(*) FROM /.*/ WHERE {quote_ident(HOME_TAG)} = {quote_string(home)} "
        f"AND time >= {watermark_ms}ms"
    )
    total = sum(
        max((v for v in row[1:] if isinstance(v, int)), default=0)
        for series in query(local, q)
        for row in series.values
    )
    if journal is not None and journal.exists():
        total += sum(
            e.points for e in journal.entries_after(cursor) if e.min_time_ms < watermark_ms
        )
    return total


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    home: str
    cloud_url: str
    poll_interval_s: float
    verify_interval_s: float
    verify_days: int
    verify_repair: bool
    history_check_interval_s: float = 86400.0
    cloud_check_interval_s: float = 300.0
    exact_cycle_s: float = 7 * 86400.0


def build_auditor(replicator: Replicator, clock: Clock, config: ServiceConfig) -> Auditor:
    """The checks, with a sink of their own (its counters are the auditor's) on the same
    clients, which are safe to share between threads."""
    sink = replicator.sink
    return Auditor(
        replicator=replicator,
        local=replicator.local,
        cloud=replicator.cloud,
        sink=BatchSink(
            sink.client, sink.dead_letters, clock, batch_size=sink.batch_size, target=sink.target
        ),
        clock=clock,
        config=AuditConfig(
            home=config.home,
            verify_interval_s=config.verify_interval_s,
            verify_days=config.verify_days,
            verify_repair=config.verify_repair,
            history_check_interval_s=config.history_check_interval_s,
            cloud_check_interval_s=config.cloud_check_interval_s,
            exact_cycle_s=config.exact_cycle_s,
        ),
        state_path=replicator.store.path.with_name("audit.json"),
    )


class ReplicatorService:
    def __init__(
        self,
        *,
        replicator: Replicator,
        backoff: Backoff,
        clock: Clock,
        config: ServiceConfig,
    ) -> None:
        self.replicator = replicator
        self.backoff = backoff
        self.clock = clock
        self.config = config
        self.last_success_ms: int | None = None
        self.last_error: str | None = None
        self.auditor = build_auditor(replicator, clock, config)
        self._reported_verify: VerifySummary | None = None
        self._backlog: int | None = None
        self._next_health_ms = clock.now_ms()
        self._lock = threading.Lock()

    @property
    def local(self) -> InfluxClient:
        return self.replicator.local

    def run_once(self) -> float:
        """One replication step (and verification or a health record when due); returns the
        seconds to wait before the next step."""
        try:
            result = self.replicator.run_once()
        except InfluxError as exc:
            delay = self.backoff.next_delay_s(getattr(exc, "retry_after_s", None))
            with self._lock:
                self.last_error = str(exc)
            level = logging.ERROR if isinstance(exc, InfluxAuthError) else logging.WARNING
            log.log(
                level,
                "replication failed (%d in a row), retrying in %.1f s: %s",
                self.backoff.failures,
                delay,
                exc,
            )
            self._report_health()
            return delay
        if self.backoff.failures:
            log.info("replication recovered after %d failures", self.backoff.failures)
        self.backoff.reset()
        with self._lock:
            self.last_success_ms = self.clock.now_ms()
            self.last_error = None
        self._report_verification()
        self._report_health()
        return self.config.poll_interval_s if result.caught_up else 0.0

    def _report_verification(self) -> None:
        """A verification that finished (on the auditor's thread) is recorded at once."""
        summary = self.auditor.summary()
        if summary is not self._reported_verify:
            self._reported_verify = summary
            self._next_health_ms = self.clock.now_ms()

    def _report_health(self) -> None:
        now = self.clock.now_ms()
        if now < self._next_health_ms:
            return
        self._next_health_ms = now + HEALTH_INTERVAL_MS
        state = self.replicator.state
        try:
            if state is not None:
                self._backlog = backlog_points(
                    self.local,
                    self.config.home,
                    state.watermark_ms,
                    self.replicator.journal,
                    state.journal_cursor,
                )
            self.local.write(self.health().to_lines(self.config.home))
        except InfluxError as exc:
            # The record is lost with the local InfluxDB down; the replication failure it would
            # report is logged already, and the next record follows in a minute.
            log.warning("could not write the replicator's health record: %s", exc)

    def health(self) -> ReplicatorHealth:
        state = self.replicator.state
        with self._lock:
            return ReplicatorHealth(
                now_ms=self.clock.now_ms(),
                cloud_url=self.config.cloud_url,
                watermark_ms=None if state is None else state.watermark_ms,
                backlog_points=self._backlog,
                last_success_ms=self.last_success_ms,
                consecutive_failures=self.backoff.failures,
                last_error=self.last_error,
                dead_letters=self.replicator.sink.dead_letters.count(),
                verify=self.auditor.summary(),
            )

    def run_forever(self, stop: threading.Event) -> None:
        audit = AuditThread(self.auditor, idle_s=1.0, error_delay_s=60.0)
        audit.start()
        try:
            while not stop.is_set():
                delay = self.run_once()
                if delay > 0:
                    stop.wait(delay)
        finally:
            audit.stop()
        self.replicator.save()

    def close(self) -> None:
        """Close the databases the service holds open: the dead letters, the journal."""
        self.replicator.sink.dead_letters.close()
        if self.replicator.journal is not None:
            self.replicator.journal.close()


def build_service(settings: Settings, clock: Clock) -> ReplicatorService:
    """The service as configured by the settings."""
    local = local_client(settings)
    cloud = cloud_influx(settings)
    sink = sink_to(settings, cloud, "cloud", clock)
    journal = JournalReader(settings.data_dir)
    if not journal.exists():
        log.warning(
            "no collector journal at %s: late data is found only by verification", journal.path
        )
    replicator = Replicator(
        local=local,
        cloud=cloud,
        sink=sink,
        store=StateStore(state_dir(settings) / "state.json"),
        journal=journal,
        clock=clock,
        config=ReplicatorConfig(
            home=settings.home,
            window_ms=round(settings.replicator_window_s * 1000),
            settle_ms=round(settings.replicator_settle_s * 1000),
            journal_settle_ms=round(settings.replicator_journal_settle_s * 1000),
        ),
    )
    return ReplicatorService(
        replicator=replicator,
        backoff=Backoff(settings.replicator_backoff_base_s, settings.replicator_backoff_cap_s),
        clock=clock,
        config=ServiceConfig(
            home=settings.home,
            cloud_url=settings.cloud_url,
            poll_interval_s=settings.replicator_poll_interval_s,
            verify_interval_s=settings.replicator_verify_interval_s,
            verify_days=settings.replicator_verify_days,
            verify_repair=settings.replicator_verify_repair,
            history_check_interval_s=settings.replicator_history_check_interval_s,
            cloud_check_interval_s=settings.replicator_cloud_check_interval_s,
            exact_cycle_s=settings.replicator_exact_cycle_s,
        ),
    )
