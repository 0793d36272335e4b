"""The collector's background work, one step at a time: drain the spool, probe InfluxDB, write
health records, prune the write journal. `run_once()` runs on the store's thread and says whether
more work is waiting and how long to pause, so the service loop (and tests) decide when to call
again.

Each part runs inside its own error boundary (`energymon.boundary`): a part that raises (a full
disk, a damaged page of `collector.db`, a health value InfluxDB refuses) is logged once, shown in
`/health` and retried with back-off, and the other parts go on; draining never stops for good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from collector.health import HealthReporter, HealthStep
from collector.store import DrainResult, DurableStore
from collector.watch import Watch
from energymon import journal
from energymon.boundary import ErrorBoundary
from energymon.clock import Clock
from energymon.errors import InfluxError

log = logging.getLogger(__name__)

DRAIN_BACKOFF_MAX_S = 30.0
PRUNE_EVERY_S = 3600.0
# How long the service loop waits when no part has work.
IDLE_STEP_S = 0.5
# At most this long between two probes of InfluxDB, whatever the health interval: an idle
# collector must notice an InfluxDB that died (or came back) before its next health record.
PROBE_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class MaintenanceStep:
    drain: DrainResult | None
    health_points: int
    pruned_journal_entries: int
    # Whether InfluxDB answered a probe in this step; None when no probe was due.
    probed_reachable: bool | None = None
    # The parts that raised in this step (each is retried after its back-off).
    failed: tuple[str, ...] = ()

    @property
    def more_work(self) -> bool:
        """True when the spool still holds points and the last drain made progress."""
        return (
            self.drain is not None and self.drain.error is None and self.drain.remaining_points > 0
        )


class Maintenance:
    def __init__(
        self,
        store: DurableStore,
        reporter: HealthReporter,
        clock: Clock,
        *,
        drain_batch_points: int,
        journal_retention_s: float,
        watch: Watch | None = None,
        probe_interval_s: float | None = None,
    ) -> None:
        self.store = store
        self.reporter = reporter
        self.clock = clock
        self.drain_batch_points = drain_batch_points
        self.journal_retention_s = journal_retention_s
        self.watch = watch or Watch()
        self.probe_interval_s = probe_interval_s or min(reporter.interval_s, PROBE_INTERVAL_S)
        self._drain_backoff_s = 1.0
        self._next_drain = clock.monotonic()
        self._next_prune = clock.monotonic()
        self._next_probe = clock.monotonic()
        faults = self.watch.faults
        self._boundaries = {
            part: ErrorBoundary(f"maintenance: {part}", faults, clock)
            for part in ("drain", "probe", "health", "prune")
        }

    def run_once(self) -> MaintenanceStep:
        now = self.clock.monotonic()
        b = self._boundaries
        drain = b["drain"].run(lambda: self._drain(now))
        probed = b["probe"].run(lambda: self._probe(now))
        health = b["health"].run(self.reporter.run_once) or HealthStep(False, 0)
        pruned = b["prune"].run(lambda: self._prune(now)) or 0
        failed = tuple(part for part, boundary in b.items() if boundary.failures)
        return MaintenanceStep(drain, health.points, pruned, probed, failed)

    def pause_s(self, step: MaintenanceStep) -> float:
        """How long the service loop waits before the next step."""
        if step.more_work:
            return 0.0
        backing_off = [b.retry_in_s for b in self._boundaries.values() if b.failures]
        return min([IDLE_STEP_S, *backing_off]) if backing_off else IDLE_STEP_S

    def _drain(self, now: float) -> DrainResult | None:
        if self.store.spool.empty:
            self.watch.last_drain_ms = self.clock.now_ms()
            self.watch.drain_error = None
            return None
        if now < self._next_drain:
            return None
        drain = self.store.drain_once(self.drain_batch_points)
        if drain.error is None:
            self._drain_backoff_s = 1.0
            self.watch.last_drain_ms = self.clock.now_ms()
            self.watch.drain_error = None
        else:
            self.watch.drain_error = drain.error
            self._next_drain = now + self._drain_backoff_s
            self._drain_backoff_s = min(self._drain_backoff_s * 2, DRAIN_BACKOFF_MAX_S)
        return drain

    def _probe(self, now: float) -> bool | None:
        """Ask InfluxDB whether it answers, once per interval, so health is true when idle."""
        if now < self._next_probe:
            return None
        self._next_probe = now + self.probe_interval_s
        try:
            self.store.influx.ping()
        except InfluxError as exc:
            reachable, why = False, str(exc)
        else:
            reachable, why = True, ""
        if reachable != self.store.influx_reachable:
            if reachable:
                log.info("InfluxDB at %s answers again", self.store.influx.url)
            else:
                log.warning("InfluxDB at %s does not answer: %s", self.store.influx.url, why)
        self.store.influx_reachable = reachable
        if reachable and not self.store.spool.empty:
            # It is back: drain now instead of at the end of the back-off.
            self._next_drain = now
        return reachable

    def _prune(self, now: float) -> int:
        if now < self._next_prune:
            return 0
        self._next_prune = now + PRUNE_EVERY_S
        cutoff_ms = self.clock.now_ms() - int(self.journal_retention_s * 1000)
        with self.store.db.transaction(durable=False) as conn:
            return journal.prune(conn, recorded_before_ms=cutoff_ms)
