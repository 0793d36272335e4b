"""The collector's background work, one step at a time: drain the spool, write health records,
prune the write journal. `run_once()` runs on the store's thread and says whether more work is
waiting, so the service loop (and tests) decide when to call again."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from collector.health import HealthReporter
from collector.store import DrainResult, DurableStore
from energymon import journal
from energymon.clock import Clock

log = logging.getLogger(__name__)

DRAIN_BACKOFF_MAX_S = 30.0
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True, slots=True)
class MaintenanceStep:
    drain: DrainResult | None
    health_points: int
    pruned_journal_entries: int

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
    ) -> None:
        self.store = store
        self.reporter = reporter
        self.clock = clock
        self.drain_batch_points = drain_batch_points
        self.journal_retention_s = journal_retention_s
        self._drain_backoff_s = 1.0
        self._next_drain = clock.monotonic()
        self._next_prune = clock.monotonic()

    def run_once(self) -> MaintenanceStep:
        now = self.clock.monotonic()
        drain = None
        if not self.store.spool.empty and now >= self._next_drain:
            drain = self.store.drain_once(self.drain_batch_points)
            if drain.error is None:
                self._drain_backoff_s = 1.0
            else:
                self._next_drain = now + self._drain_backoff_s
                self._drain_backoff_s = min(self._drain_backoff_s * 2, DRAIN_BACKOFF_MAX_S)
        health = self.reporter.run_once()
        pruned = 0
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            cutoff_ms = self.clock.now_ms() - int(self.journal_retention_s * 1000)
            with self.store.db.transaction(durable=False) as conn:
                pruned = journal.prune(conn, recorded_before_ms=cutoff_ms)
        return MaintenanceStep(drain, health.points, pruned)
