"""The replicator service: replication steps with back-off, health records, the replay of dead
letters, each behind its own error boundary (`Task`), and the checks of local against cloud.

`ReplicatorService.run_once()` does one step and returns how long to wait before the next, so
tests drive it with a manual clock; `run_forever()` is the only place that waits. The checks
(`replicator.audit`) run on a thread of their own in `run_forever()`, so they never delay the
live copy; tests step them with `auditor.run_slice()`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from energymon.backoff import Backoff
from energymon.clients import cloud_influx, local_influx
from energymon.clock import Clock
from energymon.influx import InfluxClient, quote_ident, quote_string
from energymon.journal import JournalReader
from energymon.settings import Settings
from replicator.audit import AuditConfig, Auditor, AuditThread
from replicator.deadletters import DeadLetterStore, replay
from replicator.engine import Replicator, ReplicatorConfig
from replicator.health import ReplicatorHealth, VerifySummary
from replicator.points import HOME_TAG, query
from replicator.sink import BatchSink
from replicator.state import StateStore
from replicator.tasks import Task

log = logging.getLogger(__name__)

HEALTH_INTERVAL_MS = 60_000
# Dead letters are written again this often; a pass takes at most this many.
DEAD_LETTER_INTERVAL_S = 600.0
DEAD_LETTER_PASS = 1000
# Once caught up, journal entries are followed in batches this far apart: late data reaches the
# cloud this much later at most, and the rollup worker's rewrites of the same points in the
# meantime are copied once.
JOURNAL_INTERVAL_MS = 5_000


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
    audit: AuditConfig
    health_interval_s: float = HEALTH_INTERVAL_MS / 1000
    dead_letter_interval_s: float = DEAD_LETTER_INTERVAL_S


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
        config=config.audit,
        state_path=replicator.store.path.with_name("audit.json"),
    )


class ReplicatorService:
    """Every duty runs as a `Task` behind its own error boundary and on the monotonic clock:
    a failing health record or replay of dead letters is shown by `/health` and retried, and
    delays no other duty's schedule. The checks run on their own thread, which reports its
    failures the same way."""

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
        self.auditor = build_auditor(replicator, clock, config)
        self.audit_thread: AuditThread | None = None
        self._reported_verify: VerifySummary | None = None
        self._backlog: int | None = None
        self._dead_letters_after = 0
        policy = backoff.policy

        def task(name: str, interval_s: float, own: Backoff | None = None) -> Task:
            own = own or Backoff(policy.base_s, policy.cap_s, policy.jitter)
            return Task(name, clock, interval_s=interval_s, backoff=own)

        self.replication = task("replication", config.poll_interval_s, backoff)
        self.health_record = task("health record", config.health_interval_s)
        self.dead_letter_replay = task("dead-letter replay", config.dead_letter_interval_s)
        self._lock = threading.Lock()

    @property
    def local(self) -> InfluxClient:
        return self.replicator.local

    @property
    def last_error(self) -> str | None:
        return self.replication.last_error

    def run_once(self) -> float:
        """One replication step, then each other duty that is due; returns the seconds to wait
        before the next step. Never raises for a server's error."""
        result = self.replication.run(self.replicator.run_once)
        caught_up = result is not None and result.caught_up
        if result is not None:
            with self._lock:
                self.last_success_ms = self.clock.now_ms()
        summary = self.auditor.summary()
        if summary is not self._reported_verify:
            # A fresh verdict of the checks' thread deserves a fresh record.
            self._reported_verify = summary
            self.health_record.run_in(0)
        self.run_due_duties()
        if result is None:
            return self.replication.wait_s()
        return self.config.poll_interval_s if caught_up else 0.0

    def run_due_duties(self) -> float:
        """The dead-letter replay and the health record, if due; returns the seconds until the
        next of them is due. Also run while replication backs off, so that the health record
        keeps its pace however long the back-off."""
        if self.dead_letter_replay.due():
            self.dead_letter_replay.run(self._replay_dead_letters)
        if self.health_record.due():
            self.health_record.run(self._report_health)
        return min(self.dead_letter_replay.wait_s(), self.health_record.wait_s())

    def _replay_dead_letters(self) -> int:
        store = self.replicator.sink.dead_letters
        outcome = replay(
            store,
            {"cloud": self.replicator.cloud, "local": self.replicator.local},
            limit=DEAD_LETTER_PASS,
            after_id=self._dead_letters_after,
        )
        self._dead_letters_after = outcome.next_after_id
        if outcome.replayed:
            log.info(
                "replayed %d dead letters; %d refused again, %d left",
                outcome.replayed, outcome.refused, store.count(),
            )  # fmt: skip
        return outcome.replayed

    def _report_health(self) -> None:
        state = self.replicator.state
        if state is not None:
            self._backlog = backlog_points(
                self.local,
                self.config.home,
                state.watermark_ms,
                self.replicator.journal,
                state.journal_cursor,
            )
        self.local.write(self.health().to_lines(self.config.home))

    def problems(self) -> tuple[str, ...]:
        found = [
            task.problem
            for task in (self.replication, self.dead_letter_replay, self.health_record)
            if task.problem is not None
        ]
        audit = self.audit_thread
        if audit is not None and audit.died:
            found.append("the checks' thread stopped: local and cloud are no longer compared")
        elif audit is not None and audit.last_error is not None:
            found.append(f"checks failing, retried: {audit.last_error}")
        letters = self.replicator.sink.dead_letters.count()
        if letters:
            found.append(
                f"{letters} dead letters: points a server refused, kept aside and replayed "
                "every few minutes (`energymon replicator dead-letters list`)"
            )
        summary = self.auditor.summary()
        if summary is not None and summary.unresolved_hours:
            found.append(f"the last verification left {summary.unresolved_hours} hours different")
        return tuple(found)

    def health(self) -> ReplicatorHealth:
        state = self.replicator.state
        problems = self.problems()
        with self._lock:
            return ReplicatorHealth(
                now_ms=self.clock.now_ms(),
                cloud_url=self.config.cloud_url,
                watermark_ms=None if state is None else state.watermark_ms,
                backlog_points=self._backlog,
                last_success_ms=self.last_success_ms,
                consecutive_failures=self.replication.failures,
                last_error=self.replication.last_error,
                dead_letters=self.replicator.sink.dead_letters.count(),
                verify=self.auditor.summary(),
                problems=problems,
            )

    def run_forever(self, stop: threading.Event) -> None:
        self.audit_thread = AuditThread(self.auditor, idle_s=1.0, error_delay_s=60.0)
        self.audit_thread.start()
        try:
            while not stop.is_set():
                next_step = self.clock.monotonic() + self.run_once()
                while not stop.is_set() and (wait := next_step - self.clock.monotonic()) > 0:
                    # Sleep until the next step, or until another duty is due before it.
                    stop.wait(min(wait, self.run_due_duties()))
        finally:
            self.audit_thread.stop()
        self.replicator.save()

    def close(self) -> None:
        """Close the databases the service holds open (the dead letters, the journal) and end
        the sinks' request threads."""
        self.replicator.sink.close()
        self.auditor.sink.close()
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
            journal_interval_ms=JOURNAL_INTERVAL_MS,
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
            audit=AuditConfig(
                home=settings.home,
                verify_interval_s=settings.replicator_verify_interval_s,
                verify_days=settings.replicator_verify_days,
                verify_repair=settings.replicator_verify_repair,
                history_check_interval_s=settings.replicator_history_check_interval_s,
                cloud_check_interval_s=settings.replicator_cloud_check_interval_s,
                exact_cycle_s=settings.replicator_exact_cycle_s,
            ),
        ),
    )
